"""The nomination service running in-process on its own database and exchange, with helpers to fill it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dx_shared.settings import Settings
from nomination.main import create_app
from tests.support.services import pool_of, running_app

DATA = Path(__file__).parents[2] / "data" / "nomination"
FY = 2024
CSV = {"content-type": "text/csv"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, settings) as client:
        yield client




async def outbox_count(client: httpx.AsyncClient, event_name: str) -> int:
    count: int = await pool_of(client).fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = $1", f"nomination.{event_name}.v1"
    )
    return count


async def nomination_count(client: httpx.AsyncClient) -> int:
    count: int = await pool_of(client).fetchval("SELECT count(*) FROM nominations")
    return count


async def import_csv(
    client: httpx.AsyncClient, kind: str, raw: bytes, fiscal_year: int = FY, dry_run: bool = False
) -> httpx.Response:
    return await client.post(
        f"/api/v1/{kind}/import",
        params={"fiscal_year": fiscal_year, "dry_run": str(dry_run).lower()},
        content=raw,
        headers=CSV,
    )


async def import_sample_rosters(client: httpx.AsyncClient, fiscal_year: int = FY) -> None:
    """Departments 0101…0401 active and 9901 inactive; staff 001001…001008 (see tests/data/nomination)."""
    departments = await import_csv(
        client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes(), fiscal_year
    )
    assert departments.status_code == 200, departments.text
    staff = await import_csv(client, "staff", (DATA / "staff_2024_sjis.csv").read_bytes(), fiscal_year)
    assert staff.status_code == 200, staff.text


async def nominate(
    client: httpx.AsyncClient, staff_id: str, slot: str, department_code: str | None = None, fiscal_year: int = FY
) -> httpx.Response:
    body: dict[str, object] = {"staff_id": staff_id, "fiscal_year": fiscal_year, "slot": slot}
    if department_code is not None:
        body["department_code"] = department_code
    return await client.post("/api/v1/nominations", json=body)
