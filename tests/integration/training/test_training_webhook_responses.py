"""Every answer of POST /webhooks/elearning, with real Standard Webhooks signatures."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from dx_shared.settings import Settings
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.integration.training.conftest import (
    completion_document,
    count,
    deliver,
    outbox_count,
    schedule,
)
from tests.support.services import running_app
from training.main import create_app
from training.webhook_signing import sign

pytestmark = pytest.mark.integration

BODY = json.dumps(completion_document()).encode()


async def assert_nothing_recorded(client: httpx.AsyncClient) -> None:
    assert await count(client, "webhook_deliveries") == 0
    assert await count(client, "reported_results") == 0
    assert await count(client, "completions") == 0
    assert await outbox_count(client, "SessionCompleted") == 0


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/webhooks/elearning", content=body, headers=headers)


async def test_a_signed_completion_is_recorded_with_its_outbox_row_before_the_200(client: httpx.AsyncClient) -> None:
    await schedule(client)
    response = await post(client, BODY, sign(TEST_WEBHOOK_SECRET, BODY, "msg_good"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert response.json()["completion"]["fiscal_year"] == 2025
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_every_refusal_has_its_status_code_and_records_nothing(client: httpx.AsyncClient) -> None:
    await schedule(client)
    signed = sign(TEST_WEBHOOK_SECRET, BODY, "msg_1")
    without_signature = {k: v for k, v in signed.items() if k != "webhook-signature"}
    garbled = {**signed, "webhook-signature": "v1"}
    unknown_secret = sign("whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQ=", BODY, "msg_1")
    stale = sign(TEST_WEBHOOK_SECRET, BODY, "msg_1", timestamp=int(time.time()) - 600)
    too_big = b"{" + b" " * (256 * 1024) + b"}"
    not_json = b'{"type": "completion",'
    not_utf8 = b'{"type": "completion", "staff_id": "\xff\xfe"}'
    wrong_shape = json.dumps({"event": "course_finished", "user": "A1001"}).encode()
    cases = [
        (BODY, without_signature, 400, "WEBHOOK_HEADERS_MISSING"),
        (BODY, {}, 400, "WEBHOOK_HEADERS_MISSING"),
        (BODY, garbled, 400, "WEBHOOK_HEADERS_MALFORMED"),
        (BODY, {**signed, "webhook-timestamp": "soon"}, 400, "WEBHOOK_HEADERS_MALFORMED"),
        (BODY, unknown_secret, 401, "WEBHOOK_SIGNATURE_INVALID"),
        (BODY + b" ", signed, 401, "WEBHOOK_SIGNATURE_INVALID"),
        (BODY, stale, 401, "WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE"),
        (too_big, sign(TEST_WEBHOOK_SECRET, too_big, "msg_big"), 413, "PAYLOAD_TOO_LARGE"),
        (not_json, sign(TEST_WEBHOOK_SECRET, not_json, "msg_2"), 400, "MALFORMED_JSON"),
        (not_utf8, {**signed, "webhook-id": "msg_3"}, 400, "BODY_NOT_UTF8"),
        (wrong_shape, sign(TEST_WEBHOOK_SECRET, wrong_shape, "msg_4"), 422, "UNSUPPORTED_PAYLOAD"),
    ]
    for body, headers, status, code in cases:
        response = await post(client, body, headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    await assert_nothing_recorded(client)


async def test_a_body_over_the_limit_is_refused_even_when_streamed_without_length(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield b" " * 1024

    response = await client.post("/webhooks/elearning", content=chunks(), headers={"webhook-id": "x"})
    assert response.status_code == 413
    await assert_nothing_recorded(client)


async def test_a_retry_of_the_same_delivery_answers_200_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await schedule(client)
    first = await deliver(client, completion_document(), msg_id="msg_retry")
    retry = await deliver(client, completion_document(), msg_id="msg_retry")
    assert (first.status_code, first.json()["status"]) == (200, "completed")
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_the_same_completion_id_in_another_delivery_changes_nothing(client: httpx.AsyncClient) -> None:
    await schedule(client)
    document = completion_document(completion_id="lms-777")
    assert (await deliver(client, document, msg_id="msg_a")).json()["status"] == "completed"
    again = await deliver(client, document, msg_id="msg_b")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert await outbox_count(client, "SessionCompleted") == 1


@pytest.fixture
def rotating_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_secrets": f"whsec_bmV3LXNlY3JldC0yMDI1LWZvci10aGUtcm90YXRpb24tdGVzdA== \n {TEST_WEBHOOK_SECRET}"})


async def test_during_secret_rotation_deliveries_signed_by_either_secret_are_accepted(
    rotating_settings: Settings,
) -> None:
    async with running_app(create_app, rotating_settings) as client:
        await schedule(client)
        old = await deliver(client, completion_document(staff_id="A1"), secret=TEST_WEBHOOK_SECRET)
        new = await deliver(client, completion_document(staff_id="A2"), secret="whsec_bmV3LXNlY3JldC0yMDI1LWZvci10aGUtcm90YXRpb24tdGVzdA==")
        retired = await deliver(client, completion_document(staff_id="A3"), secret="whsec_b2xkLW9sZC1vbGQ=")
        assert [old.status_code, new.status_code, retired.status_code] == [200, 200, 401]
        assert await count(client, "completions") == 2
