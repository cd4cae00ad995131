"""The training service running in-process on its own database and exchange, with helpers to drive it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dx_shared.settings import Settings
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.support.services import pool_of, running_app
from training.main import create_app
from training.webhook_signing import sign

SESSION_ID = "S-2025-EL-001"
ACTIVITY_IRI = f"https://lms.example.jp/activities/{SESSION_ID}"
ADL = "http://adlnet.gov/expapi/verbs/"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, settings) as client:
        yield client




async def count(client: httpx.AsyncClient, table: str) -> int:
    total: int = await pool_of(client).fetchval(f"SELECT count(*) FROM {table}")
    return total


async def outbox_count(client: httpx.AsyncClient, event_name: str) -> int:
    total: int = await pool_of(client).fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = $1", f"training.{event_name}.v1"
    )
    return total


async def schedule(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "session_id": SESSION_ID,
        "fiscal_year": 2025,
        "method": "e_learning",
        "audience": "promoter",
        "stage": 1,
        "title": "業務効率化 e-ラーニング",
        "move_on": "completed",
        **fields,
    }
    return await client.post("/api/v1/sessions", json=body)


def completion_document(**fields: Any) -> dict[str, Any]:
    return {
        "type": "completion",
        "session_id": SESSION_ID,
        "staff_id": "A1001",
        "occurred_at": "2025-06-01T10:00:00+09:00",
        **fields,
    }


def statement(verb: str, staff_id: str = "A1001", **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.jp", "name": staff_id}},
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": ACTIVITY_IRI},
        "timestamp": "2025-06-01T10:00:00+09:00",
        **fields,
    }


async def deliver(
    client: httpx.AsyncClient,
    document: object,
    *,
    msg_id: str | None = None,
    secret: str = TEST_WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> httpx.Response:
    body = json.dumps(document, ensure_ascii=False).encode()
    headers = sign(secret, body, msg_id or f"msg_{uuid.uuid4().hex}", timestamp)
    return await client.post("/webhooks/elearning", content=body, headers=headers)
