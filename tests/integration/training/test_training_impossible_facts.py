"""Over HTTP: completions, attendance and waivers dated in the future are refused and record nothing."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import httpx
import pytest

from dx_shared.clock import fixed_clock
from tests.integration.training.conftest import (
    SESSION_ID,
    completion_document,
    count,
    deliver,
    outbox_count,
    schedule,
    statement,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today(client: httpx.AsyncClient) -> None:
    client.app.state.clock = fixed_clock(NOW)  # type: ignore[attr-defined]


async def test_a_webhook_completion_dated_in_the_future_is_refused_with_422_and_nothing_is_recorded(
    client: httpx.AsyncClient,
) -> None:
    assert (await schedule(client, fiscal_year=2026)).status_code == 201
    response = await deliver(client, completion_document(occurred_at="2029-01-10T10:00:00+09:00"))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "OCCURRED_IN_FUTURE"
    # A batch with one future statement is refused whole.
    batch = [statement("completed"), statement("completed", timestamp="2027-06-01T10:00:00+09:00")]
    assert (await deliver(client, batch)).status_code == 422
    assert await outbox_count(client, "SessionCompleted") == 0
    assert await count(client, "completions") == 0


async def test_a_completion_within_the_clock_skew_is_accepted_and_the_moved_clock_decides(
    client: httpx.AsyncClient,
) -> None:
    assert (await schedule(client, fiscal_year=2026)).status_code == 201
    response = await deliver(client, completion_document(occurred_at="2026-12-02T10:04:00+09:00"))
    assert response.status_code == 200, response.text
    client.app.state.clock = fixed_clock(datetime(2026, 12, 1, tzinfo=UTC))  # type: ignore[attr-defined]
    later = await deliver(client, completion_document(staff_id="A1002", occurred_at="2026-12-02T10:00:00+09:00"))
    assert later.status_code == 422


async def test_attendance_dated_in_the_future_is_refused_and_records_nothing(client: httpx.AsyncClient) -> None:
    future_session = await schedule(
        client,
        session_id="C-2026-1",
        fiscal_year=2026,
        method="classroom",
        starts_at="2027-02-10T10:00:00+09:00",
        ends_at="2027-02-10T17:00:00+09:00",
    )
    assert future_session.status_code == 201, future_session.text
    stated = await client.post(
        "/api/v1/sessions/C-2026-1/attendance", json={"staff_ids": ["A1001"], "occurred_at": "2027-02-10T10:00:00+09:00"}
    )
    assert stated.status_code == 422
    assert stated.json()["code"] == "OCCURRED_IN_FUTURE"
    by_default = await client.post("/api/v1/sessions/C-2026-1/attendance", json={"staff_ids": ["A1001"]})
    assert by_default.status_code == 422, "a session that has not ended has no attendance yet"
    assert await count(client, "completions") == 0


async def test_a_backfill_row_dated_in_the_future_is_that_rows_error(client: httpx.AsyncClient) -> None:
    assert (await schedule(client, fiscal_year=2026)).status_code == 201
    csv = f"session_id,staff_id,occurred_at\n{SESSION_ID},A1001,2026-06-01\n{SESSION_ID},A1002,2027-06-01\n"
    response = await client.post("/api/v1/completions/import", content=csv.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    rows = {row["line"]: row for row in response.json()["rows"]}
    assert rows[2]["status"] == "recorded"
    assert (rows[3]["status"], rows[3]["code"]) == ("rejected", "OCCURRED_IN_FUTURE")


async def test_a_waiver_in_a_fiscal_year_that_has_not_begun_is_refused(client: httpx.AsyncClient) -> None:
    assert (await schedule(client, fiscal_year=2027)).status_code == 201
    body = {"session_id": SESSION_ID, "staff_id": "A1001", "actor": "dx-01", "reason": "前年度修了済"}
    response = await client.post("/api/v1/completions/waive", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "OCCURRED_IN_FUTURE"
    assert await outbox_count(client, "CompletionWaived") == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/sessions?fiscal_year=2018", None),
        ("GET", "/api/v1/completions?fiscal_year=2029", None),
        ("GET", "/api/v1/curricula/0/1", None),
        ("PUT", "/api/v1/curricula/2030/1", {"session_ids": ["x"]}),
        ("POST", "/api/v1/sessions", {"fiscal_year": 2028, "method": "e_learning", "audience": "all_staff", "title": "t"}),
    ],
)
async def test_a_fiscal_year_outside_the_accepted_range_is_refused_everywhere(
    client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "FISCAL_YEAR_OUT_OF_RANGE"


async def test_a_csv_field_over_the_csv_module_limit_refuses_the_backfill_with_422(client: httpx.AsyncClient) -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    raw = f'session_id,staff_id,occurred_at\nS1,"{huge}",2026-06-01\n'.encode()
    response = await client.post("/api/v1/completions/import", content=raw, headers={"content-type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["code"] == "CSV_FIELD_TOO_LARGE"
    assert len(response.text) < 2000
