"""An unmatched completion that training matched later no longer counts as unmatched, in either arrival order."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.reporting.event_factory import feed, rematched, unmatched

pytestmark = pytest.mark.integration


async def unmatched_count(reporting: httpx.AsyncClient) -> int:
    count: int = (await reporting.get("/api/v1/reports/pipeline")).json()["unmatched_statements"]["count"]
    return count


async def test_a_rematched_statement_leaves_the_unmatched_count_whichever_arrives_first(
    settings: Settings, reporting: httpx.AsyncClient
) -> None:
    await feed(settings, reporting, [unmatched("U1"), unmatched("U2"), rematched("U3")], copies=2)
    assert await unmatched_count(reporting) == 2
    await feed(settings, reporting, [rematched("U1"), unmatched("U3")], copies=2)
    assert await unmatched_count(reporting) == 1
    listed = (await reporting.get("/api/v1/reports/pipeline")).json()["unmatched_statements"]["recent"]
    assert [row["unmatched_id"] for row in listed] == ["U2"]
