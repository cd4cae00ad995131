"""The audit trail on a real service: one row per state-changing request and per refusal, append-only,
readable and exportable by the offices only."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from dx_shared.roles import Role
from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings
from tests.integration.training.conftest import completion_document, deliver, schedule
from tests.support.roles import as_role
from tests.support.services import pool_of, running_app
from training.main import create_app

pytestmark = pytest.mark.integration

def HR() -> dict[str, str]:
    return as_role("hr_office")


def HEAD() -> dict[str, str]:
    return as_role("department", department="0101")


def TRAINEE() -> dict[str, str]:
    return as_role("trainee", staff_id="A1001")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, settings) as client:
        yield client


async def audit_rows(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows = await pool_of(client).fetch("SELECT * FROM audit_log ORDER BY id")
    return [dict(row) for row in rows]


async def test_a_state_changing_request_writes_exactly_one_row_and_a_read_none(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/sessions",
        json={
            "session_id": "S-AUDIT-1", "fiscal_year": 2025, "method": "classroom", "audience": "promoter",
            "stage": 1, "title": "集合研修",
        },
        headers={**HR(), "X-Correlation-ID": "corr-audit-1"},
    )
    assert created.status_code == 201
    assert (await client.get("/api/v1/sessions", headers=HR())).status_code == 200
    rows = await audit_rows(client)
    assert len(rows) == 1
    row = rows[0]
    assert (row["method"], row["route"], row["status"], row["code"]) == ("POST", "/api/v1/sessions", 201, None)
    assert (row["role"], row["department_code"], row["correlation_id"]) == ("hr_office", None, "corr-audit-1")
    assert row["at"] is not None


async def test_a_refused_request_writes_one_row_with_its_code_and_changes_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    await schedule(client)
    before = await audit_rows(client)
    refused = await client.post(
        "/api/v1/completions/waive",
        json={"session_id": "S-2025-EL-001", "staff_id": "A1001", "actor": "x", "reason": "y"},
        headers=HEAD(),
    )
    assert refused.status_code == 403
    rows = (await audit_rows(client))[len(before):]
    assert len(rows) == 1
    row = rows[0]
    assert (row["method"], row["route"], row["status"], row["code"]) == (
        "POST", "/api/v1/completions/waive", 403, "WAIVER_NOT_PERMITTED",
    )
    assert (row["role"], row["department_code"]) == ("department", "0101")
    assert await pool_of(client).fetchval("SELECT count(*) FROM waivers") == 0
    assert await pool_of(client).fetchval("SELECT count(*) FROM outbox") == 1  # the session's only


async def test_a_refused_read_is_recorded_too(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/audit", headers=TRAINEE())).status_code == 403
    assert (await client.get("/api/v1/audit.csv", headers=HEAD())).status_code == 403
    rows = await audit_rows(client)
    assert [(row["method"], row["route"], row["status"], row["role"]) for row in rows] == [
        ("GET", "/api/v1/audit", 403, "trainee"),
        ("GET", "/api/v1/audit.csv", 403, "department"),
    ]


async def test_a_webhook_delivery_is_recorded_as_the_webhook(client: httpx.AsyncClient) -> None:
    await schedule(client)
    assert (await deliver(client, completion_document(), msg_id="msg_audited")).status_code == 200
    row = (await audit_rows(client))[-1]
    assert (row["subject"], row["route"], row["status"]) == ("webhook", "/webhooks/elearning", 200)
    assert row["target"] == {"webhook_id": "msg_audited"}


async def test_the_audit_log_cannot_be_updated_deleted_or_truncated(client: httpx.AsyncClient) -> None:
    await schedule(client)
    pool = pool_of(client)
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 1
    for statement in (
        "UPDATE audit_log SET status = 200",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE status = 201") == 1


async def test_the_offices_list_and_export_the_trail_with_filters(client: httpx.AsyncClient) -> None:
    for number in range(3):
        await client.post(
            "/api/v1/sessions",
            json={
                "session_id": f"S-LIST-{number}", "fiscal_year": 2025, "method": "classroom",
                "audience": "promoter", "stage": 1, "title": "研修",
            },
            headers=HR(),
        )
    await client.post("/api/v1/completions/waive", json={"session_id": "S-LIST-0", "staff_id": "A1"}, headers=HEAD())

    first = (await client.get("/api/v1/audit", params={"limit": 2}, headers=HR())).json()
    assert [item["status"] for item in first["items"]] == [403, 201]
    second = (
        await client.get("/api/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]}, headers=HR())
    ).json()
    assert [item["status"] for item in second["items"]] == [201, 201]
    assert second["next_cursor"] is not None
    assert (await client.get("/api/v1/audit", params={"limit": 2, "cursor": second["next_cursor"]})).json() == {
        "items": [],
        "next_cursor": None,
    }

    exported = await client.get("/api/v1/audit.csv", params={"action": "POST /api/v1/sessions"}, headers=HR())
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table[0][0] == "ID" and len(table) == 4
    assert {(line[6], line[7], line[9]) for line in table[1:]} == {("POST", "/api/v1/sessions", "201")}
    assert [int(line[0]) for line in table[1:]] == sorted(int(line[0]) for line in table[1:])

    refusals = await client.get("/api/v1/audit.csv", params={"action": "/api/v1/completions/waive"}, headers=HR())
    lines = list(csv.reader(io.StringIO(refusals.content.decode("utf-8-sig"))))[1:]
    assert [(line[4], line[5], line[10]) for line in lines] == [("department", "0101", "WAIVER_NOT_PERMITTED")]

    later = await client.get("/api/v1/audit.csv", params={"from": "2999-01-01T00:00:00+09:00"}, headers=HR())
    assert len(list(csv.reader(io.StringIO(later.content.decode("utf-8-sig"))))) == 1  # the header only
    earlier = await client.get("/api/v1/audit", params={"to": "2000-01-01T00:00:00Z"}, headers=HR())
    assert earlier.json()["items"] == []
    nobody = await client.get("/api/v1/audit", params={"subject": "nobody"}, headers=HR())
    assert nobody.json()["items"] == []


# ---- the subject, as the identity layer will state it ---------------------------------------------


@dataclass(frozen=True)
class VerifiedCaller:
    """What `request.state.caller` holds once callers come with tokens (subject, client id, scopes)."""

    role: Role
    department_code: str | None = None
    staff_id: str | None = None
    subject: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None


def things_app(settings: Settings) -> FastAPI:
    router = APIRouter()

    @router.post("/api/v1/things/{thing_id}/close", status_code=204)
    async def close_thing(thing_id: str, request: Request) -> None:
        request.state.caller = VerifiedCaller(Role.DX_OFFICE, subject="sub-7f3a", client_id="office-cli")

    # A service name the settings know (each has its own database URL setting); nothing else of it runs.
    return build_service(ServiceSpec(name="nomination", migrations=Path("/nonexistent"), routers=[router]), settings)


async def test_the_row_names_the_token_subject_and_the_target(settings: Settings) -> None:
    async with running_app(things_app, settings) as client:
        thing = uuid.uuid4().hex
        assert (await client.post(f"/api/v1/things/{thing}/close")).status_code == 204
        rows = await audit_rows(client)
    assert len(rows) == 1
    row = rows[0]
    assert (row["subject"], row["client_id"], row["role"]) == ("sub-7f3a", "office-cli", "dx_office")
    assert (row["route"], row["target"], row["status"]) == ("/api/v1/things/{thing_id}/close", {"thing_id": thing}, 204)


async def test_requests_finishing_together_each_get_their_own_row_and_a_refused_row_costs_no_other(
    settings: Settings,
) -> None:
    """The rows of concurrent requests are written together; one the database refuses (a NUL in a target,
    which jsonb cannot hold) is lost alone, as a lone write would be, and no response changes."""
    async with running_app(things_app, settings) as client:
        things = [uuid.uuid4().hex for _ in range(30)]
        paths = [f"/api/v1/things/{thing}/close" for thing in things]
        paths.insert(15, "/api/v1/things/%00/close")
        answers = await asyncio.gather(*(client.post(path) for path in paths))
        rows = await audit_rows(client)
    assert [answer.status_code for answer in answers] == [204] * 31
    assert sorted(row["target"]["thing_id"] for row in rows) == sorted(things)
    assert {(row["route"], row["status"], row["role"]) for row in rows} == {
        ("/api/v1/things/{thing_id}/close", 204, "dx_office")
    }
