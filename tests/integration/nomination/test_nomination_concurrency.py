"""N1 and N4 hold when requests race: the database, not the order of arrival, decides who gets the slot."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.nomination.conftest import FY, import_csv, nominate, pool_of

pytestmark = pytest.mark.integration

PARALLEL = 10
ROUNDS = 5


async def import_one_department_of(client, size: int) -> list[str]:
    staff_ids = [f"5{index:05d}" for index in range(size)]
    departments = "所属コード,所属名,部局\n0101,総務課,総務部\n".encode()
    roster = "職員番号,氏名,所属コード\n" + "".join(f"{staff_id},職員{staff_id},0101\n" for staff_id in staff_ids)
    assert (await import_csv(client, "departments", departments)).status_code == 200
    assert (await import_csv(client, "staff", roster.encode())).status_code == 200
    return staff_ids


async def test_n1_parallel_recommendations_for_one_department_accept_exactly_one(client) -> None:
    staff_ids = await import_one_department_of(client, PARALLEL)

    for round_number in range(ROUNDS):
        responses = await asyncio.gather(*(nominate(client, staff_id, "recommended", "0101") for staff_id in staff_ids))

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * (PARALLEL - 1), f"round {round_number}: {statuses}"
        assert {response.json()["code"] for response in responses if response.status_code == 409} == {"QUOTA_EXCEEDED"}
        active = await pool_of(client).fetchval(
            "SELECT count(*) FROM nominations WHERE fiscal_year = $1 AND department_code = '0101'"
            " AND slot = 'recommended' AND status = 'active'",
            FY,
        )
        assert active == 1
        [winner] = [response.json() for response in responses if response.status_code == 201]
        withdrawal = await client.post(
            f"/api/v1/nominations/{winner['nomination_id']}/withdraw", json={"reason": f"round {round_number}"}
        )
        assert withdrawal.status_code == 200

    announced = await pool_of(client).fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = 'nomination.TraineeNominated.v1'"
    )
    assert announced == ROUNDS


async def test_n4_parallel_nominations_of_one_person_accept_exactly_one(client) -> None:
    [staff_id] = await import_one_department_of(client, 1)

    for round_number in range(ROUNDS):
        responses = await asyncio.gather(
            *(nominate(client, staff_id, "self" if index % 2 else "recommended") for index in range(PARALLEL))
        )

        accepted = [response.json() for response in responses if response.status_code == 201]
        refused_codes = {response.json()["code"] for response in responses if response.status_code != 201}
        assert len(accepted) == 1, f"round {round_number}: {[response.status_code for response in responses]}"
        assert refused_codes <= {"ALREADY_NOMINATED", "QUOTA_EXCEEDED"}
        assert "ALREADY_NOMINATED" in refused_codes
        await client.post(f"/api/v1/nominations/{accepted[0]['nomination_id']}/withdraw", json={"reason": "again"})


IDENTICAL = 20
TRIALS = 6


async def test_a_refusals_code_does_not_depend_on_timing_identical_concurrent_nominations_get_the_sequential_answer(
    client,
) -> None:
    [staff_id] = await import_one_department_of(client, 1)

    for trial in range(TRIALS):
        responses = await asyncio.gather(
            *(nominate(client, staff_id, "recommended", "0101") for _ in range(IDENTICAL))
        )
        sequential_retry = await nominate(client, staff_id, "recommended", "0101")

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * (IDENTICAL - 1), f"trial {trial}: {statuses}"
        codes = [response.json()["code"] for response in responses if response.status_code == 409]
        assert sequential_retry.json()["code"] == "ALREADY_NOMINATED"
        assert set(codes) == {"ALREADY_NOMINATED"}, f"trial {trial}: {sorted(codes)}"
        [winner] = [response.json() for response in responses if response.status_code == 201]
        withdrawal = await client.post(
            f"/api/v1/nominations/{winner['nomination_id']}/withdraw", json={"reason": f"trial {trial}"}
        )
        assert withdrawal.status_code == 200
