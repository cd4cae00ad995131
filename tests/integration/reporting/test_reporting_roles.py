"""Roles (POLICY.md §5) on the reports: department heads see their own department's rows and people,
trainees their own progress, operations data is for the offices and the systems office."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.reporting.event_factory import advanced, departments, feed, nominated, roster
from tests.support.identity import bearer, head_of, trainee

pytestmark = pytest.mark.integration



async def test_each_caller_sees_only_what_their_role_allows(settings: Settings, reporting: httpx.AsyncClient) -> None:
    await feed(
        settings,
        reporting,
        [
            departments(2024, ("D1", "DX推進課", "企画政策部"), ("D2", "人事課", "総務部")),
            roster(2024, ("S1", "D1", False), ("S2", "D2", False)),
            nominated("N1", "S1", "D1", 2024, "recommended"),
            nominated("N2", "S2", "D2", 2024, "recommended"),
            advanced("S1", 2024, 0, 1),
            advanced("S2", 2024, 0, 1),
        ],
    )
    HEAD_D1 = head_of("D1")
    TRAINEE_S1 = trainee("S1")
    everything = (await reporting.get("/api/v1/reports/departments", params={"fiscal_year": 2024})).json()
    assert {row["code"] for row in everything["departments"]} == {"D1", "D2"}
    own = (await reporting.get("/api/v1/reports/departments", params={"fiscal_year": 2024}, headers=HEAD_D1)).json()
    assert [row["code"] for row in own["departments"]] == ["D1"]
    assert own["totals"] == everything["totals"], "the totals name nobody and stay whole"

    assert (await reporting.get("/api/v1/reports/trainees/S1", headers=HEAD_D1)).status_code == 200
    assert (await reporting.get("/api/v1/reports/trainees/S2", headers=HEAD_D1)).status_code == 403
    assert (await reporting.get("/api/v1/reports/trainees/S1", headers=TRAINEE_S1)).status_code == 200
    refused = await reporting.get("/api/v1/reports/trainees/S2", headers=TRAINEE_S1)
    assert refused.status_code == 403
    assert refused.json()["code"] == "ROLE_NOT_PERMITTED"

    assert (await reporting.get("/api/v1/reports/departments", headers=TRAINEE_S1)).status_code == 403
    assert (await reporting.get("/api/v1/reports/pipeline", headers=HEAD_D1)).status_code == 403
    assert (await reporting.get("/api/v1/reports/pipeline", headers=bearer("info_policy"))).status_code == 200
    baseline = (await reporting.get("/api/v1/reports/baseline", params={"fiscal_year": 2024}, headers=HEAD_D1)).json()
    assert [row["key"] for row in baseline["departments"]] == ["D1"]
