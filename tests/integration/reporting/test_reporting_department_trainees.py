"""A department's DX promoters of a fiscal year (the portal's drill-down level below the department):
stage, slot, required sessions done; the offices see every department, a head only their own, trainees none."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.reporting.event_factory import (
    advanced,
    curriculum,
    departments,
    feed,
    nominated,
    roster,
    session,
    session_completed,
    waived,
)
from tests.support.identity import bearer, head_of, trainee

pytestmark = pytest.mark.integration


async def test_a_departments_trainees_are_listed_with_their_stage_slot_and_required_sessions(
    settings: Settings, reporting: httpx.AsyncClient
) -> None:
    await feed(settings, reporting, [
        departments(2024, ("D1", "DX推進課", "企画政策部"), ("D2", "人事課", "総務部")),
        roster(2024, ("S1", "D1", False), ("S2", "D1", False), ("S3", "D2", False)),
        session("E1", 2024, "promoter", stage=1), session("E2", 2024, "promoter", stage=1),
        session("E3", 2024, "promoter", stage=1),
        curriculum(2024, 1, ["E1", "E2", "E3"]),
        nominated("N1", "S1", "D1", 2024, "recommended"),
        nominated("N2", "S2", "D1", 2024, "self"),
        nominated("N3", "S3", "D2", 2024, "recommended"),
        advanced("S1", 2024, 0, 1), advanced("S2", 2024, 0, 1), advanced("S3", 2024, 0, 1),
        session_completed("C1", "E1", "S1", 2024), waived("W1", "E2", "S1", 2024),
    ])
    listed = await reporting.get("/api/v1/reports/departments/D1/trainees", params={"fiscal_year": 2024})
    assert listed.status_code == 200, listed.text
    people = {row["staff_id"]: row for row in listed.json()["trainees"]}
    assert set(people) == {"S1", "S2"}
    assert people["S1"]["stage"] == 1 and people["S1"]["slot"] == "recommended"
    assert (people["S1"]["required_count"], people["S1"]["done_count"]) == (3, 2)
    assert people["S1"]["sessions_waived"] == ["E2"]
    assert people["S2"]["slot"] == "self" and people["S2"]["done_count"] == 0

    only_self = await reporting.get("/api/v1/reports/departments/D1/trainees",
                                    params={"fiscal_year": 2024, "slot": "self"})
    assert [row["staff_id"] for row in only_self.json()["trainees"]] == ["S2"]
    stage_two = await reporting.get("/api/v1/reports/departments/D1/trainees",
                                    params={"fiscal_year": 2024, "stage": 2})
    assert stage_two.json()["trainees"] == []


async def test_a_head_sees_only_their_own_departments_trainees_and_a_trainee_none(
    settings: Settings, reporting: httpx.AsyncClient
) -> None:
    await feed(settings, reporting, [
        departments(2024, ("D1", "DX推進課", "企画政策部"), ("D2", "人事課", "総務部")),
        nominated("N1", "S1", "D1", 2024, "recommended"), advanced("S1", 2024, 0, 1),
    ])
    url = "/api/v1/reports/departments/D1/trainees"
    own = await reporting.get(url, params={"fiscal_year": 2024}, headers=head_of("D1"))
    assert [row["staff_id"] for row in own.json()["trainees"]] == ["S1"]
    other = await reporting.get(url, params={"fiscal_year": 2024}, headers=head_of("D2"))
    assert other.status_code == 403 and other.json()["code"] == "ROLE_NOT_PERMITTED"
    themselves = await reporting.get(url, params={"fiscal_year": 2024}, headers=trainee("S1"))
    assert themselves.status_code == 403
    assert (await reporting.get(url, params={"fiscal_year": 2024}, headers=bearer("hr_office"))).status_code == 200
