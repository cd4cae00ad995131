"""The decisions a fiscal year's closing still has to settle (for the DX office's checklist): pending ones
that wait for the year, and provisional ones of the year; the offices only."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.progression.conftest import settled
from tests.integration.progression.progression_events import nominated
from tests.support import BusProbe, publish_event
from tests.support.identity import bearer, head_of, trainee

pytestmark = pytest.mark.integration


async def test_a_renomination_waiting_for_an_open_year_is_listed_as_pending_on_that_year(
    settings: Settings, progression: httpx.AsyncClient
) -> None:
    facts = [nominated("200001", 2024, "recommended"), nominated("200001", 2025), nominated("200002", 2024)]
    async with BusProbe(settings, ["progression.#"]) as probe:
        for fact in facts:
            await publish_event(settings, fact)
        await settled(progression, probe, facts)

    pending = await progression.get("/api/v1/decisions", params={"fiscal_year": 2024, "state": "pending"},
                                    headers=bearer("dx_office"))
    assert pending.status_code == 200, pending.text
    items = pending.json()["items"]
    assert [(i["staff_id"], i["fiscal_year"], i["awaiting_fiscal_year"]) for i in items] == [("200001", 2025, 2024)]
    assert items[0]["decision"] == "pending" and items[0]["explanation"]["ja"]

    provisional = await progression.get("/api/v1/decisions", params={"fiscal_year": 2024, "state": "provisional"},
                                        headers=bearer("hr_office"))
    assert {(i["staff_id"], i["stage"]) for i in provisional.json()["items"]} == {("200001", 1), ("200002", 1)}

    closed = await progression.post("/api/v1/fiscal-years/2024/close", headers=bearer("dx_office"))
    assert closed.status_code == 201
    after = await progression.get("/api/v1/decisions", params={"fiscal_year": 2024}, headers=bearer("dx_office"))
    assert after.json()["count"] == 0, "closing the year decided the waiting renomination"


async def test_only_the_offices_list_open_decisions(progression: httpx.AsyncClient) -> None:
    for headers in (bearer("info_policy"), head_of("0101"), trainee("200001")):
        refused = await progression.get("/api/v1/decisions", params={"fiscal_year": 2024}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
    bad = await progression.get("/api/v1/decisions", params={"fiscal_year": "not-a-year"},
                                headers=bearer("dx_office"))
    assert bad.status_code == 422
