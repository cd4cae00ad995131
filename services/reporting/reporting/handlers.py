"""The reporting subscriber: every public event is logged as received and applied to the projections.

The shared consumer has already opened the transaction and recorded the event id in the inbox; the
event log row and every projection change commit with it, so a redelivery changes nothing.
"""

from __future__ import annotations

import asyncpg

from dx_shared import contracts as c
from dx_shared.consumer import Subscription
from dx_shared.envelope import CloudEvent
from reporting.projections import project
from reporting.repository import ProjectionStore


async def handle(conn: asyncpg.Connection, event: CloudEvent, payload: c.EventPayload) -> None:
    store = ProjectionStore(conn)
    received_at = await store.log_event(event, payload.routing_key())
    if received_at is None:
        return
    await project(store, event, payload, received_at)


subscription = Subscription(
    purpose="events",
    events=list(c.ALL_EVENTS),
    handler=handle,
    description="Every public event, kept in the event log and projected into the reports.",
)
