"""Duplicate deliveries, sequential and concurrent: one completion and one SessionCompleted on the bus."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from dx_shared.settings import Settings
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.integration.training.conftest import completion_document, count, outbox_count, schedule, statement
from tests.support.bus import BusProbe
from training.webhook_signing import sign

pytestmark = pytest.mark.integration


async def test_fifty_concurrent_copies_of_one_delivery_make_one_completion_and_one_event(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await schedule(client)
    body = json.dumps(completion_document()).encode()
    headers = sign(TEST_WEBHOOK_SECRET, body, "msg_storm")
    async with BusProbe(settings, ["training.SessionCompleted.v1"]) as probe:
        responses = await asyncio.gather(
            *(client.post("/webhooks/elearning", content=body, headers=headers) for _ in range(50))
        )
        statuses = sorted(response.json()["status"] for response in responses)
        assert {response.status_code for response in responses} == {200}
        assert statuses == ["completed"] + ["duplicate"] * 49
        await probe.wait_for_type("SessionCompleted", 1)
        await probe.quiet(1.0)
        assert len(probe.of_type("SessionCompleted")) == 1
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_fifty_concurrent_deliveries_of_one_statement_make_one_completion(client: httpx.AsyncClient) -> None:
    await schedule(client)
    body = json.dumps(statement("completed")).encode()
    responses = await asyncio.gather(
        *(
            client.post("/webhooks/elearning", content=body, headers=sign(TEST_WEBHOOK_SECRET, body, f"msg_{n}"))
            for n in range(50)
        )
    )
    assert {response.status_code for response in responses} == {200}
    assert await count(client, "webhook_deliveries") == 50
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_sequential_retries_of_one_delivery_make_one_completion(client: httpx.AsyncClient) -> None:
    await schedule(client)
    body = json.dumps(completion_document()).encode()
    headers = sign(TEST_WEBHOOK_SECRET, body, "msg_again")
    statuses = [
        (await client.post("/webhooks/elearning", content=body, headers=headers)).json()["status"] for _ in range(5)
    ]
    assert statuses == ["completed"] + ["duplicate"] * 4
    assert await outbox_count(client, "SessionCompleted") == 1
