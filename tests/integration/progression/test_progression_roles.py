"""Roles (POLICY.md §5) at the progression service: only the DX office closes a year; department heads see
the people their department nominated; trainees see themselves."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.progression.conftest import settled
from tests.integration.progression.progression_events import nominated
from tests.support import BusProbe, publish_event
from tests.support.identity import bearer, head_of, trainee

pytestmark = pytest.mark.integration


async def test_only_the_dx_office_closes_a_fiscal_year(progression: httpx.AsyncClient) -> None:
    for role in ("hr_office", "info_policy"):
        refused = await progression.post("/api/v1/fiscal-years/2024/close", headers=bearer(role))
        assert refused.status_code == 403
        assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
    closed = await progression.post("/api/v1/fiscal-years/2024/close", headers=bearer("dx_office"))
    assert closed.status_code == 201


async def test_a_department_head_sees_the_people_their_department_nominated_and_a_trainee_only_themselves(
    settings: Settings, progression: httpx.AsyncClient
) -> None:
    facts = [nominated("100001", 2024), nominated("100002", 2024)]
    async with BusProbe(settings, ["progression.#"]) as probe:
        for fact in facts:
            await publish_event(settings, fact)
        await settled(progression, probe, facts)
    own_head = head_of("0101")
    other_head = head_of("0201")
    assert (await progression.get("/api/v1/trainees/100001", headers=own_head)).status_code == 200
    assert (await progression.get("/api/v1/trainees/100001", headers=other_head)).status_code == 403
    themselves = trainee("100001")
    assert (await progression.get("/api/v1/trainees/100001", headers=themselves)).status_code == 200
    assert (await progression.get("/api/v1/trainees/100002", headers=themselves)).status_code == 403
