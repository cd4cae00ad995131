"""Roles over HTTP: refusals record nothing, and department heads and trainees see only their own."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.nomination.conftest import (
    import_sample_rosters,
    nominate,
    nomination_count,
    outbox_count,
)
from tests.support.identity import head_of, trainee

pytestmark = pytest.mark.integration



def HEAD_0101() -> dict[str, str]:
    return head_of("0101")


def TRAINEE_001003() -> dict[str, str]:
    return trainee("001003")


async def test_a_department_head_nominating_for_another_department_is_refused_and_nothing_is_recorded(
    client: httpx.AsyncClient,
) -> None:
    await import_sample_rosters(client)
    refused = await client.post(
        "/api/v1/nominations",
        json={"staff_id": "001004", "fiscal_year": 2024, "slot": "recommended", "department_code": "0201"},
        headers=HEAD_0101(),
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
    assert await nomination_count(client) == 0
    assert await outbox_count(client, "TraineeNominated") == 0


async def test_a_department_head_nominates_their_own_and_lists_only_their_own_department(
    client: httpx.AsyncClient,
) -> None:
    await import_sample_rosters(client)
    own = await client.post(
        "/api/v1/nominations",
        json={"staff_id": "001001", "fiscal_year": 2024, "slot": "recommended"},
        headers=HEAD_0101(),
    )
    assert own.status_code == 201, own.text
    assert own.json()["department_code"] == "0101"
    assert (await nominate(client, "001004", "recommended")).status_code == 201
    listed = await client.get("/api/v1/nominations", params={"fiscal_year": 2024}, headers=HEAD_0101())
    assert [item["staff_id"] for item in listed.json()["items"]] == ["001001"]
    other = await client.get("/api/v1/departments/0201/nominations", params={"fiscal_year": 2024}, headers=HEAD_0101())
    assert other.status_code == 403


async def test_a_trainee_applies_for_the_self_slot_and_sees_only_their_own_nomination(
    client: httpx.AsyncClient,
) -> None:
    await import_sample_rosters(client)
    applied = await client.post(
        "/api/v1/nominations", json={"staff_id": "001003", "fiscal_year": 2024, "slot": "self"}, headers=TRAINEE_001003()
    )
    assert applied.status_code == 201, applied.text
    for_someone_else = await client.post(
        "/api/v1/nominations", json={"staff_id": "001006", "fiscal_year": 2024, "slot": "self"}, headers=TRAINEE_001003()
    )
    assert for_someone_else.status_code == 403
    assert (await nominate(client, "001006", "self")).status_code == 201
    listed = await client.get("/api/v1/nominations", params={"fiscal_year": 2024}, headers=TRAINEE_001003())
    assert [item["staff_id"] for item in listed.json()["items"]] == ["001003"]


async def test_only_the_offices_import_rosters(client: httpx.AsyncClient) -> None:
    as_department = await client.post(
        "/api/v1/staff/import",
        params={"fiscal_year": 2024},
        content=b"x",
        headers={**HEAD_0101(), "content-type": "text/csv"},
    )
    assert as_department.status_code == 403
    assert as_department.json()["code"] == "ROLE_NOT_PERMITTED"
    as_trainee = await client.post(
        "/api/v1/departments/import",
        params={"fiscal_year": 2024},
        content=b"x",
        headers={**TRAINEE_001003(), "content-type": "text/csv"},
    )
    assert as_trainee.status_code == 403
