"""xAPI statements and completion documents: move_on, fiscal years in Japan time, unmatched reports."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dx_shared import contracts as c
from dx_shared.envelope import new_event
from dx_shared.settings import Settings
from tests.integration.training.conftest import (
    completion_document,
    count,
    deliver,
    outbox_count,
    pool_of,
    schedule,
    statement,
)
from tests.support.bus import publish_event

pytestmark = pytest.mark.integration

MOVE_ON = ["completed", "passed", "completed_and_passed", "completed_or_passed"]
# (verb, move_on) → does the single statement complete the session?
EXPECTED = {
    ("completed", "completed"): True,
    ("completed", "passed"): False,
    ("completed", "completed_and_passed"): False,
    ("completed", "completed_or_passed"): True,
    ("passed", "completed"): False,
    ("passed", "passed"): True,
    ("passed", "completed_and_passed"): False,
    ("passed", "completed_or_passed"): True,
    ("failed", "completed"): False,
    ("failed", "passed"): False,
    ("failed", "completed_and_passed"): False,
    ("failed", "completed_or_passed"): False,
}


def activity(move_on: str) -> str:
    return f"https://lms.example.jp/xapi/activities/{move_on}"


async def test_each_verb_completes_a_session_exactly_when_its_move_on_says(client: httpx.AsyncClient) -> None:
    for move_on in MOVE_ON:
        response = await schedule(
            client, session_id=f"S-{move_on}", move_on=move_on, xapi_activity_id=activity(move_on)
        )
        assert response.status_code == 201, response.text
    for (verb, move_on), completes in EXPECTED.items():
        document = statement(verb, staff_id=f"{verb}-{move_on}")
        document["object"]["id"] = activity(move_on)
        response = await deliver(client, document)
        expected = (200, "completed") if completes else (202, "not_met")
        assert (response.status_code, response.json()["status"]) == expected, (verb, move_on, response.text)
    rows = await pool_of(client).fetch("SELECT staff_id, source, session_id FROM completions ORDER BY staff_id")
    assert sorted(row["staff_id"] for row in rows) == sorted(f"{v}-{m}" for (v, m), ok in EXPECTED.items() if ok)
    assert {row["source"] for row in rows} == {"xapi"}
    assert {row["session_id"] for row in rows} <= {f"S-{m}" for m in MOVE_ON}


async def test_completed_and_passed_may_arrive_as_two_statements(client: httpx.AsyncClient) -> None:
    await schedule(client, move_on="completed_and_passed")
    first = await deliver(client, statement("completed"))
    second = await deliver(client, statement("passed", result={"score": {"scaled": 0.8}}))
    assert (first.status_code, first.json()["status"]) == (202, "not_met")
    assert (second.status_code, second.json()["status"]) == (200, "completed")
    assert second.json()["completion"]["score"] == 0.8
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_a_statement_whose_object_ends_in_the_session_id_names_that_session(client: httpx.AsyncClient) -> None:
    await schedule(client)
    response = await deliver(client, statement("completed"))
    assert response.json()["completion"]["session_id"] == "S-2025-EL-001"


async def test_the_same_statement_in_another_delivery_is_counted_once(client: httpx.AsyncClient) -> None:
    await schedule(client)
    document = statement("completed")
    assert (await deliver(client, document, msg_id="msg_x1")).json()["status"] == "completed"
    again = await deliver(client, document, msg_id="msg_x2")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert await count(client, "completions") == 1


@pytest.mark.parametrize(
    ("timestamp", "fiscal_year"), [("2025-03-31T15:30:00Z", 2025), ("2025-03-31T23:30:00+09:00", 2024)]
)
async def test_the_fiscal_year_of_a_completion_is_when_it_happened_in_japan_time(
    client: httpx.AsyncClient, timestamp: str, fiscal_year: int
) -> None:
    await schedule(client)
    response = await deliver(client, statement("completed", timestamp=timestamp))
    completion = response.json()["completion"]
    assert completion["fiscal_year"] == fiscal_year
    row = await pool_of(client).fetchrow("SELECT fiscal_year, occurred_at, recorded_at FROM completions")
    assert row["fiscal_year"] == fiscal_year
    assert row["occurred_at"].isoformat() != row["recorded_at"].isoformat()


async def test_a_completion_for_an_unknown_session_is_kept_as_unmatched_and_reported(
    client: httpx.AsyncClient,
) -> None:
    response = await deliver(client, completion_document(session_id="S-NOPE"))
    assert (response.status_code, response.json()["status"], response.json()["reason"]) == (
        202,
        "unmatched",
        "UNKNOWN_SESSION",
    )
    assert await outbox_count(client, "CompletionUnmatched") == 1
    listed = (await client.get("/api/v1/completions/unmatched")).json()
    assert [(u["session_ref"], u["staff_id"], u["reason"]) for u in listed] == [("S-NOPE", "A1001", "UNKNOWN_SESSION")]
    retry = await deliver(client, completion_document(session_id="S-NOPE", completion_id="c1"))
    assert retry.status_code == 202 and await outbox_count(client, "CompletionUnmatched") == 2


async def test_a_completion_of_someone_not_on_that_years_roster_is_unmatched_but_before_any_roster_is_kept(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await schedule(client)
    before_roster = await deliver(client, completion_document(staff_id="B2002"))
    assert before_roster.json()["status"] == "completed"
    roster = c.StaffImported(fiscal_year=2025, staff=[c.StaffEntry(staff_id="A1001", department_code="0101")], total=1)
    await publish_event(settings, new_event(roster))
    for _ in range(200):
        if await count(client, "rosters") == 1:
            break
        await asyncio.sleep(0.05)
    on_roster = await deliver(client, completion_document(staff_id="A1001"))
    off_roster = await deliver(client, completion_document(staff_id="Z9999"))
    assert on_roster.json()["status"] == "completed"
    assert (off_roster.status_code, off_roster.json()["reason"]) == (202, "UNKNOWN_STAFF")


async def test_a_statement_with_a_verb_that_completes_nothing_is_acknowledged(client: httpx.AsyncClient) -> None:
    await schedule(client)
    document = statement("completed")
    document["verb"] = {"id": "http://adlnet.gov/expapi/verbs/launched", "display": {"en-US": "launched"}}
    response = await deliver(client, document)
    assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert await count(client, "completions") == 0
