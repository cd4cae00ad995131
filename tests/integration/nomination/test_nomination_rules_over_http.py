"""N1–N6 through the running service: every refusal is problem+json with its code, and records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from dx_shared import contracts as c
from dx_shared.envelope import new_event
from dx_shared.settings import Settings
from tests.integration.nomination.conftest import (
    DATA,
    FY,
    import_csv,
    import_sample_rosters,
    nominate,
    nomination_count,
    outbox_count,
    pool_of,
)
from tests.support.bus import BusProbe, publish_event

pytestmark = pytest.mark.integration


async def test_an_accepted_nomination_is_answered_201_and_announced(client, settings: Settings) -> None:
    await import_sample_rosters(client)

    async with BusProbe(settings, ["nomination.TraineeNominated.v1"]) as probe:
        response = await nominate(client, "００１００１", "recommended", "0101")
        [event] = await probe.wait_for_type("TraineeNominated")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["staff_id"] == "001001" and body["staff_name"] == "青森　太郎"
    assert body["department_code"] == "0101" and body["department_name"] == "総務部総務課"
    assert body["slot"] == "recommended" and body["status"] == "active"
    assert response.headers["location"] == f"/api/v1/nominations/{body['nomination_id']}"
    assert event.subject == "001001"
    assert event.data["nomination_id"] == body["nomination_id"]
    assert event.data["department_code"] == "0101" and event.data["fiscal_year"] == FY
    assert event.data["slot"] == "recommended"


Setup = Callable[[httpx.AsyncClient], Awaitable[None]]


async def slot_taken(client: httpx.AsyncClient) -> None:
    assert (await nominate(client, "001001", "recommended", "0101")).status_code == 201


async def person_nominated_by_self(client: httpx.AsyncClient) -> None:
    assert (await nominate(client, "001002", "self")).status_code == 201


async def promoter_last_year(client: httpx.AsyncClient) -> None:
    await import_sample_rosters(client, fiscal_year=2023)
    assert (await nominate(client, "001003", "self", fiscal_year=2023)).status_code == 201


async def year_closed(client: httpx.AsyncClient) -> None:
    await pool_of(client).execute(
        "INSERT INTO closed_fiscal_years (fiscal_year, closed_at, event_id) VALUES ($1, now(), 'test')", FY
    )


async def nothing(client: httpx.AsyncClient) -> None:
    return None


REFUSALS = [
    pytest.param(slot_taken, ("001002", "recommended", "0101"), 409, "QUOTA_EXCEEDED", id="N1-QUOTA_EXCEEDED"),
    pytest.param(promoter_last_year, ("001003", "recommended", "0102"), 409, "NOT_NEW", id="N2-NOT_NEW"),
    pytest.param(
        person_nominated_by_self, ("001002", "recommended", "0101"), 409, "ALREADY_NOMINATED", id="N4-ALREADY_NOMINATED"
    ),
    pytest.param(nothing, ("999999", "self", None), 422, "UNKNOWN_STAFF", id="N6-UNKNOWN_STAFF"),
    pytest.param(nothing, ("001008", "self", None), 422, "DEPARTMENT_INACTIVE", id="N6-DEPARTMENT_INACTIVE"),
    pytest.param(nothing, ("001003", "recommended", "0101"), 422, "NOT_OWN_DEPARTMENT", id="N6-NOT_OWN_DEPARTMENT"),
    pytest.param(year_closed, ("001001", "self", None), 409, "FISCAL_YEAR_CLOSED", id="N6-FISCAL_YEAR_CLOSED"),
]


@pytest.mark.parametrize(("setup", "attempt", "status", "code"), REFUSALS)
async def test_a_refused_nomination_is_problem_json_with_its_rule_code_and_records_nothing(
    client, setup: Setup, attempt: tuple[str, str, str | None], status: int, code: str
) -> None:
    await import_sample_rosters(client)
    await setup(client)
    nominations_before = await nomination_count(client)
    events_before = await outbox_count(client, "TraineeNominated")

    staff_id, slot, department_code = attempt
    response = await nominate(client, staff_id, slot, department_code)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["title"] and problem["title_ja"] and problem["detail"] and problem["detail_ja"]
    assert await nomination_count(client) == nominations_before
    assert await outbox_count(client, "TraineeNominated") == events_before


async def test_n2_n5_a_continuing_promoter_is_accepted_through_the_self_slot(client) -> None:
    await promoter_last_year(client)
    await import_sample_rosters(client)

    response = await nominate(client, "001003", "self")

    assert response.status_code == 201
    assert response.json()["slot"] == "self"


async def test_n2_a_withdrawn_earlier_nomination_does_not_stop_a_recommendation(client) -> None:
    await import_sample_rosters(client, fiscal_year=2023)
    earlier = (await nominate(client, "001003", "self", fiscal_year=2023)).json()
    await client.post(f"/api/v1/nominations/{earlier['nomination_id']}/withdraw", json={"reason": "辞退"})
    await import_sample_rosters(client)

    response = await nominate(client, "001003", "recommended", "0102")

    assert response.status_code == 201


async def test_n6_a_nomination_for_a_year_without_a_roster_is_refused(client) -> None:
    response = await nominate(client, "001001", "self", fiscal_year=2025)

    assert response.status_code == 422
    assert response.json()["code"] == "UNKNOWN_STAFF"


async def test_n6_a_closed_fiscal_year_announced_by_progression_stops_nominations(client, settings: Settings) -> None:
    await import_sample_rosters(client)
    closed = new_event(c.FiscalYearClosed(fiscal_year=FY, closed_at=datetime.now(UTC)))

    await publish_event(settings, closed, copies=2)
    for _ in range(100):
        if await pool_of(client).fetchval("SELECT count(*) FROM closed_fiscal_years WHERE fiscal_year = $1", FY):
            break
        await asyncio.sleep(0.1)
    response = await nominate(client, "001001", "self")

    assert response.status_code == 409
    assert response.json()["code"] == "FISCAL_YEAR_CLOSED"
    assert await pool_of(client).fetchval("SELECT event_id FROM closed_fiscal_years") == closed.id
    assert (await nominate(client, "001001", "self", fiscal_year=FY + 1)).json()["code"] == "UNKNOWN_STAFF"


async def test_withdrawal_frees_the_recommended_slot_and_is_announced_once(client, settings: Settings) -> None:
    await import_sample_rosters(client)
    first = (await nominate(client, "001001", "recommended", "0101")).json()

    async with BusProbe(settings, ["nomination.NominationWithdrawn.v1"]) as probe:
        withdrawn = await client.post(
            f"/api/v1/nominations/{first['nomination_id']}/withdraw", json={"reason": "異動のため"}
        )
        twice = await client.post(f"/api/v1/nominations/{first['nomination_id']}/withdraw", json={"reason": "再度"})
        [event] = await probe.wait_for_type("NominationWithdrawn")
        await probe.quiet(0.5)
    second = await nominate(client, "001002", "recommended", "0101")

    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["withdrawal_reason"] == "異動のため"
    assert twice.status_code == 409 and twice.json()["code"] == "ALREADY_WITHDRAWN"
    assert len(probe.of_type("NominationWithdrawn")) == 1
    assert event.data["reason"] == "異動のため" and event.data["staff_id"] == "001001"
    assert await outbox_count(client, "NominationWithdrawn") == 1
    assert second.status_code == 201


async def test_withdrawal_frees_the_persons_year_for_another_slot(client) -> None:
    await import_sample_rosters(client)
    first = (await nominate(client, "001001", "recommended", "0101")).json()
    await client.post(f"/api/v1/nominations/{first['nomination_id']}/withdraw", json={"reason": "自薦に切替え"})

    assert (await nominate(client, "001001", "self")).status_code == 201


async def test_withdrawing_an_unknown_nomination_is_not_found(client) -> None:
    unknown = await client.post(
        "/api/v1/nominations/00000000-0000-0000-0000-000000000000/withdraw", json={"reason": "x"}
    )
    garbage = await client.post("/api/v1/nominations/not-an-id/withdraw", json={"reason": "x"})

    assert unknown.status_code == 404 and unknown.json()["code"] == "NOMINATION_NOT_FOUND"
    assert garbage.status_code == 404 and garbage.json()["code"] == "NOMINATION_NOT_FOUND"


async def test_a_withdrawal_needs_a_reason(client) -> None:
    await import_sample_rosters(client)
    first = (await nominate(client, "001001", "self")).json()

    response = await client.post(f"/api/v1/nominations/{first['nomination_id']}/withdraw", json={"reason": ""})

    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"


async def test_nominations_are_listed_by_year_department_slot_and_status_page_by_page(client) -> None:
    await import_sample_rosters(client)
    for staff_id, slot in [("001001", "recommended"), ("001002", "self"), ("001004", "self"), ("001006", "self")]:
        assert (await nominate(client, staff_id, slot)).status_code == 201
    withdrawn = (await client.get("/api/v1/nominations", params={"staff_id": "001006"})).json()["items"][0]
    await client.post(f"/api/v1/nominations/{withdrawn['nomination_id']}/withdraw", json={"reason": "辞退"})

    everything = (await client.get("/api/v1/nominations", params={"fiscal_year": FY})).json()
    in_0101 = (await client.get("/api/v1/nominations", params={"fiscal_year": FY, "department_code": "0101"})).json()
    self_active = (
        await client.get("/api/v1/nominations", params={"fiscal_year": FY, "slot": "self", "status": "active"})
    ).json()
    page_two = (await client.get("/api/v1/nominations", params={"fiscal_year": FY, "page": 2, "page_size": 3})).json()

    assert everything["total"] == 4
    assert {item["staff_id"] for item in in_0101["items"]} == {"001001", "001002"}
    assert {item["staff_id"] for item in self_active["items"]} == {"001002", "001004"}
    assert (page_two["page"], page_two["page_size"], page_two["total"], len(page_two["items"])) == (2, 3, 4, 1)


async def test_a_department_sees_who_uses_its_recommended_slot_and_its_self_slot_applicants(client) -> None:
    await import_sample_rosters(client)
    await nominate(client, "001004", "recommended", "0201")
    await nominate(client, "001005", "self")

    view = (await client.get("/api/v1/departments/0201/nominations", params={"fiscal_year": FY})).json()
    empty = (await client.get("/api/v1/departments/0301/nominations", params={"fiscal_year": FY})).json()
    unknown = await client.get("/api/v1/departments/7777/nominations", params={"fiscal_year": FY})

    assert view["department"] == {
        "code": "0201",
        "name": "企画政策部デジタル戦略課",
        "bureau": "企画政策部",
        "active": True,
    }
    assert view["recommended_slot"]["used"] is True
    assert view["recommended_slot"]["nomination"]["staff_id"] == "001004"
    assert [item["staff_id"] for item in view["self_slot"]] == ["001005"]
    assert empty["recommended_slot"] == {"used": False, "nomination": None}
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_DEPARTMENT"


async def test_a_nomination_sheet_is_judged_row_by_row_by_the_same_rules(client, settings: Settings) -> None:
    await import_sample_rosters(client)

    async with BusProbe(settings, ["nomination.TraineeNominated.v1"]) as probe:
        response = await import_csv(client, "nominations", (DATA / "nominations_2024_sjis.csv").read_bytes())
        await probe.wait_for_type("TraineeNominated", count=2)
        await probe.quiet(0.5)

    assert response.status_code == 200, response.text
    sheet = response.json()
    assert [(row["line"], row["outcome"], row["code"]) for row in sheet["results"]] == [
        (2, "accepted", None),
        (3, "refused", "QUOTA_EXCEEDED"),
        (4, "refused", "NOT_OWN_DEPARTMENT"),
        (5, "accepted", None),
        (6, "refused", "ALREADY_NOMINATED"),
        (7, "refused", "UNKNOWN_STAFF"),
        (8, "refused", "BAD_SLOT"),
        (9, "refused", "DEPARTMENT_INACTIVE"),
    ]
    assert sheet["summary"] == {"accepted": 2, "refused": 6}
    assert all(row["message_ja"] for row in sheet["results"] if row["outcome"] == "refused")
    assert len(probe.of_type("TraineeNominated")) == 2
    assert await nomination_count(client) == 2


async def test_a_nomination_sheet_dry_run_judges_every_row_and_records_nothing(client) -> None:
    await import_sample_rosters(client)

    response = await import_csv(client, "nominations", (DATA / "nominations_2024_sjis.csv").read_bytes(), dry_run=True)

    assert response.json()["summary"] == {"accepted": 2, "refused": 6}
    assert await nomination_count(client) == 0
    assert await outbox_count(client, "TraineeNominated") == 0
