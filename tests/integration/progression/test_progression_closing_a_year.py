"""P6 over HTTP: a fiscal year that has not ended cannot be closed, except by an audited early close."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from dx_shared.clock import fixed_clock
from tests.support.identity import bearer
from tests.support.services import pool_of

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today(progression: httpx.AsyncClient) -> None:
    progression.app.state.clock = fixed_clock(NOW)  # type: ignore[attr-defined]


async def closings(client: httpx.AsyncClient) -> list[dict[str, object]]:
    rows = await pool_of(client).fetch(
        "SELECT body FROM outbox WHERE routing_key = 'progression.FiscalYearClosed.v1' ORDER BY seq"
    )
    return [json.loads(row["body"])["data"] for row in rows]


@pytest.mark.parametrize("year", [2026, 2027])
async def test_closing_a_fiscal_year_that_has_not_ended_is_refused_and_records_nothing(
    progression: httpx.AsyncClient, year: int
) -> None:
    response = await progression.post(f"/api/v1/fiscal-years/{year}/close", json={"actor": "dx-01"})
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "FISCAL_YEAR_NOT_ENDED"
    assert response.json()["title_ja"]
    assert await closings(progression) == []


async def test_a_year_that_has_ended_is_closed(progression: httpx.AsyncClient) -> None:
    response = await progression.post("/api/v1/fiscal-years/2025/close", json={"actor": "dx-01"})
    assert response.status_code == 201, response.text
    assert response.json()["early_close"] is False


async def test_an_early_close_needs_a_reason_and_the_dx_office(progression: httpx.AsyncClient) -> None:
    without_reason = await progression.post("/api/v1/fiscal-years/2026/close", json={"early_close": True})
    assert without_reason.status_code == 422
    assert without_reason.json()["code"] == "EARLY_CLOSE_REASON_REQUIRED"
    by_hr = await progression.post(
        "/api/v1/fiscal-years/2026/close",
        json={"early_close": True, "reason": "組織改編のため"},
        headers=bearer("hr_office"),
    )
    assert by_hr.status_code == 403
    assert await closings(progression) == []


async def test_an_early_close_by_the_dx_office_with_a_reason_is_recorded_in_the_event(
    progression: httpx.AsyncClient,
) -> None:
    response = await progression.post(
        "/api/v1/fiscal-years/2026/close", json={"actor": "dx-01", "early_close": True, "reason": "組織改編のため"}
    )
    assert response.status_code == 201, response.text
    assert (response.json()["early_close"], response.json()["reason"]) == (True, "組織改編のため")
    [event] = await closings(progression)
    assert (event["fiscal_year"], event["early_close"], event["reason"]) == (2026, True, "組織改編のため")


async def test_the_year_can_be_closed_once_the_clock_reaches_1_april_after_it(progression: httpx.AsyncClient) -> None:
    progression.app.state.clock = fixed_clock(datetime(2027, 3, 31, 15, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    assert (await progression.post("/api/v1/fiscal-years/2026/close")).status_code == 201


@pytest.mark.parametrize("year", ["0", "2018", "2028", "R99"])
async def test_a_fiscal_year_outside_the_accepted_range_cannot_be_closed(
    progression: httpx.AsyncClient, year: str
) -> None:
    response = await progression.post(f"/api/v1/fiscal-years/{year}/close")
    assert response.status_code == 422
    assert response.json()["code"] == "FISCAL_YEAR_OUT_OF_RANGE"
