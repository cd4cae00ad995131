"""The offices find a person on a fiscal year's roster by staff id or part of a name; nobody else may."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.nomination.conftest import import_sample_rosters
from tests.support.identity import bearer, head_of, trainee

pytestmark = pytest.mark.integration


async def test_the_offices_find_people_by_the_start_of_a_staff_id_or_part_of_a_name(client: httpx.AsyncClient) -> None:
    await import_sample_rosters(client)
    by_id = await client.get("/api/v1/staff", params={"q": "00100", "fiscal_year": 2024}, headers=bearer("dx_office"))
    assert by_id.status_code == 200, by_id.text
    assert [p["staff_id"] for p in by_id.json()] == [f"00100{n}" for n in range(1, 9)]
    by_name = await client.get("/api/v1/staff", params={"q": "弘前花子", "fiscal_year": 2024},
                               headers=bearer("hr_office"))
    assert by_name.json() == [{"staff_id": "001002", "name": "弘前　花子", "is_manager": True,
                               "department_code": "0101"}]
    nobody = await client.get("/api/v1/staff", params={"q": "存在しない", "fiscal_year": 2024},
                              headers=bearer("dx_office"))
    assert nobody.json() == []


async def test_a_department_head_or_a_trainee_cannot_search_the_roster(client: httpx.AsyncClient) -> None:
    await import_sample_rosters(client)
    for headers in (head_of("0101"), trainee("001001"), bearer("info_policy")):
        refused = await client.get("/api/v1/staff", params={"q": "青森", "fiscal_year": 2024}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
