"""What the offices do over HTTP: schedule sessions, publish curricula, take attendance, backfill, waive."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.training.conftest import count, outbox_count, pool_of, schedule
from tests.support.identity import bearer, head_of, subject_of, trainee

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[2] / "data" / "training"


async def test_a_scheduled_session_is_listed_and_announced_once(client: httpx.AsyncClient) -> None:
    created = await schedule(client, starts_at="2025-06-01T09:00:00+09:00", capacity=30)
    repeated = await schedule(client, starts_at="2025-06-01T09:00:00+09:00", capacity=30)
    changed = await schedule(client, title="別の題名")
    assert (created.status_code, repeated.status_code, changed.status_code) == (201, 200, 409)
    assert changed.json()["code"] == "SESSION_EXISTS"
    listed = (await client.get("/api/v1/sessions", params={"fiscal_year": "FY2025"})).json()
    assert [s["session_id"] for s in listed] == ["S-2025-EL-001"]
    assert (await client.get("/api/v1/sessions", params={"fiscal_year": 2024})).json() == []
    assert await outbox_count(client, "SessionScheduled") == 1


async def test_a_session_without_id_gets_one(client: httpx.AsyncClient) -> None:
    response = await schedule(client, session_id=None, audience="all_staff", stage=None, method="classroom")
    assert response.status_code == 201 and response.json()["session_id"].startswith("FY2025-")


async def test_an_inconsistent_session_is_refused_with_its_rule(client: httpx.AsyncClient) -> None:
    response = await schedule(client, stage=None)
    assert (response.status_code, response.json()["code"]) == (422, "INVALID_SESSION")
    assert response.json()["title_ja"]
    assert await count(client, "sessions") == 0


async def test_curriculum_revisions_increase_only_when_the_sessions_change(client: httpx.AsyncClient) -> None:
    for session_id in ("S1", "S2", "S3"):
        await schedule(client, session_id=session_id)
    first = await client.put("/api/v1/curricula/2025/1", json={"session_ids": ["S2", "S1"]})
    same = await client.put("/api/v1/curricula/FY2025/1", json={"session_ids": ["S1", "S2"]})
    changed = await client.put("/api/v1/curricula/2025/1", json={"session_ids": ["S1", "S3"]})
    assert [(r.json()["revision"], r.json()["changed"]) for r in (first, same, changed)] == [
        (1, True),
        (1, False),
        (2, True),
    ]
    shown = (await client.get("/api/v1/curricula/2025/1")).json()
    assert shown["session_ids"] == ["S1", "S3"]
    assert [r["session_ids"] for r in shown["revisions"]] == [["S1", "S2"], ["S1", "S3"]]
    assert await outbox_count(client, "CurriculumPublished") == 2
    assert (await client.get("/api/v1/curricula/2025/2")).status_code == 404


async def test_a_curriculum_naming_an_unknown_or_foreign_session_is_refused(client: httpx.AsyncClient) -> None:
    await schedule(client, session_id="S-stage2", stage=2)
    unknown = await client.put("/api/v1/curricula/2025/1", json={"session_ids": ["S-missing"]})
    foreign = await client.put("/api/v1/curricula/2025/1", json={"session_ids": ["S-stage2"]})
    assert (unknown.json()["code"], foreign.json()["code"]) == ("UNKNOWN_SESSION", "CURRICULUM_SESSION_MISMATCH")
    assert await count(client, "curriculum_revisions") == 0


async def test_attendance_records_each_person_once_and_refuses_over_capacity(client: httpx.AsyncClient) -> None:
    await schedule(
        client,
        session_id="C1",
        method="classroom",
        capacity=2,
        starts_at="2025-07-01T13:00:00+09:00",
        ends_at="2025-07-01T17:00:00+09:00",
    )
    first = await client.post("/api/v1/sessions/C1/attendance", json={"staff_ids": ["A1", "A1"]})
    again = await client.post("/api/v1/sessions/C1/attendance", json={"staff_ids": ["A1", "A2"]})
    full = await client.post("/api/v1/sessions/C1/attendance", json={"staff_ids": ["A3"]})
    assert [c["staff_id"] for c in first.json()["recorded"]] == ["A1"]
    assert first.json()["recorded"][0]["occurred_at"] == "2025-07-01T08:00:00Z"
    assert ([c["staff_id"] for c in again.json()["recorded"]], again.json()["already_recorded"]) == (["A2"], ["A1"])
    assert (full.status_code, full.json()["code"]) == (409, "CAPACITY_EXCEEDED")
    assert await outbox_count(client, "SessionCompleted") == 2


async def test_attendance_is_refused_for_unknown_and_e_learning_sessions(client: httpx.AsyncClient) -> None:
    await schedule(client)
    unknown = await client.post("/api/v1/sessions/nope/attendance", json={"staff_ids": ["A1"]})
    e_learning = await client.post("/api/v1/sessions/S-2025-EL-001/attendance", json={"staff_ids": ["A1"]})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_SESSION")
    assert (e_learning.status_code, e_learning.json()["code"]) == (409, "ATTENDANCE_NOT_APPLICABLE")
    assert await count(client, "completions") == 0


async def test_a_backfill_reports_each_row_and_a_second_import_records_nothing(client: httpx.AsyncClient) -> None:
    await schedule(client)
    raw = (DATA / "completions_backfill.csv").read_bytes()
    first = (await client.post("/api/v1/completions/import", content=raw, headers={"content-type": "text/csv"})).json()
    assert [(r["line"], r["status"], r["code"]) for r in first["rows"]] == [
        (2, "recorded", None),
        (3, "recorded", None),
        (4, "rejected", "UNKNOWN_SESSION"),
        (5, "rejected", "INVALID_VALUE"),
    ]
    second = (await client.post("/api/v1/completions/import", content=raw)).json()
    assert (second["recorded"], second["duplicates"]) == (0, 2)
    years = await pool_of(client).fetch("SELECT staff_id, fiscal_year, source FROM completions ORDER BY staff_id")
    assert [(r["staff_id"], r["fiscal_year"], r["source"]) for r in years] == [
        ("A1001", 2025, "import"),
        ("A1002", 2025, "import"),
    ]
    assert await outbox_count(client, "SessionCompleted") == 2


async def test_a_shift_jis_backfill_with_japanese_headers_is_read(client: httpx.AsyncClient) -> None:
    await schedule(client)
    raw = (DATA / "completions_backfill_sjis.csv").read_bytes()
    result = (await client.post("/api/v1/completions/import", content=raw)).json()
    assert result["recorded"] == 1


async def test_only_the_offices_may_waive_and_a_waiver_is_kept_once(client: httpx.AsyncClient) -> None:
    await schedule(client)
    # An `actor` in the body is ignored: who waived is the access token's subject.
    waiver = {"session_id": "S-2025-EL-001", "staff_id": "A1001", "actor": "someone-else", "reason": "病気療養のため"}
    hr_office = bearer("hr_office")
    refused = await client.post("/api/v1/completions/waive", json=waiver, headers=head_of("0101"))
    as_trainee = await client.post("/api/v1/completions/waive", json=waiver, headers=trainee("A1001"))
    no_reason = await client.post("/api/v1/completions/waive", json={**waiver, "reason": " "}, headers=hr_office)
    granted = await client.post("/api/v1/completions/waive", json=waiver, headers=hr_office)
    repeated = await client.post("/api/v1/completions/waive", json=waiver, headers=bearer("dx_office"))
    assert [r.status_code for r in (refused, as_trainee, no_reason, granted, repeated)] == [403, 403, 422, 201, 200]
    assert no_reason.json()["code"] == "REASON_REQUIRED"
    assert as_trainee.json()["code"] == "WAIVER_NOT_PERMITTED"
    assert (granted.json()["actor"], granted.json()["fiscal_year"]) == (subject_of(hr_office), 2025)
    assert await outbox_count(client, "CompletionWaived") == 1


async def test_only_the_offices_run_sessions_and_a_trainee_sees_only_their_own_completions(
    client: httpx.AsyncClient,
) -> None:
    head = head_of("0101")
    refused = await client.post(
        "/api/v1/sessions",
        json={"fiscal_year": 2025, "method": "e_learning", "audience": "all_staff", "title": "DX基礎"},
        headers=head,
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
    await schedule(client)
    raw = "session_id,staff_id,occurred_at\nS-2025-EL-001,A1001,2025-05-01\nS-2025-EL-001,A1002,2025-05-02\n"
    assert (await client.post("/api/v1/completions/import", content=raw.encode())).status_code == 200
    mine = await client.get("/api/v1/completions", headers=trainee("A1001"))
    assert [row["staff_id"] for row in mine.json()] == ["A1001"]
    assert (await client.get("/api/v1/completions", headers=head)).status_code == 403
