"""Events the nomination service listens to: a closed fiscal year stops its nominations (N6, P6)."""

from __future__ import annotations

import asyncpg

from dx_shared import contracts as c
from dx_shared.consumer import Subscription
from dx_shared.envelope import CloudEvent
from nomination import use_cases


async def on_fiscal_year_closed(conn: asyncpg.Connection, event: CloudEvent, payload: c.FiscalYearClosed) -> None:
    await use_cases.record_fiscal_year_closed(conn, payload.fiscal_year, payload.closed_at or event.time, event.id)


subscription = Subscription(
    purpose="events",
    events=[c.FiscalYearClosed],
    handler=on_fiscal_year_closed,
    description="Records closed fiscal years so that later nominations for them are refused (FISCAL_YEAR_CLOSED).",
)
