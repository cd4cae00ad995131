"""The webhook cannot run on a known secret, and an id reused with a different body is refused (409)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from dx_shared.settings import DEMO_WEBHOOK_SECRET, Settings
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.integration.training.conftest import completion_document, count, deliver, outbox_count, schedule, statement
from tests.support.services import running_app
from training.main import create_app
from training.webhook import WebhookSecretsRefused
from training.webhook_signing import sign

pytestmark = pytest.mark.integration

RECORD_TABLES = ("webhook_deliveries", "reported_results", "completions", "unmatched_results", "outbox")


def _secret_of(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


@pytest.mark.parametrize(
    ("secrets", "demo_mode", "message"),
    [
        ("", False, "DX_WEBHOOK_SECRETS is not set"),
        ("   ", False, "DX_WEBHOOK_SECRETS is not set"),
        (_secret_of(b"sixteen-byte-key"), False, "secret 1 holds 16 bytes; at least 24"),
        (f"{TEST_WEBHOOK_SECRET} {_secret_of(b'x' * 23)}", False, "secret 2 holds 23 bytes"),
        ("not-a-whsec-secret-at-all-but-long-enough", False, "does not start with whsec_"),
        ("whsec_***not-base64***", False, "is not whsec_<base64>"),
        (DEMO_WEBHOOK_SECRET, False, "the demo secret published in the repository"),
        (_secret_of(b"short-even-in-demo"), True, "holds 18 bytes"),
    ],
)
async def test_the_service_refuses_to_start_without_a_fit_secret(
    settings: Settings, secrets: str, demo_mode: bool, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unfit = settings.model_copy(update={"webhook_secrets": secrets, "demo_mode": demo_mode})
    with pytest.raises(WebhookSecretsRefused, match=message.replace("*", r"\*")) as refused:
        async with running_app(create_app, unfit):
            pytest.fail("the service started")
    for secret in secrets.split():
        assert secret not in str(refused.value)
        assert secret not in capsys.readouterr().out


async def test_demo_mode_runs_on_the_demo_secret_and_never_logs_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = settings.model_copy(update={"webhook_secrets": "", "demo_mode": True})
    async with running_app(create_app, demo) as client:
        await schedule(client)
        delivered = await deliver(client, completion_document(), secret=DEMO_WEBHOOK_SECRET)
        assert delivered.status_code == 200
    logged = capsys.readouterr().out
    assert "webhook_demo_secret_in_use" in logged
    assert DEMO_WEBHOOK_SECRET not in logged
    assert DEMO_WEBHOOK_SECRET.removeprefix("whsec_") not in logged


def _reused(id_kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "dx_webhook_delivery_id_reused_total", {"service": "training", "id_kind": id_kind}
    )
    return value or 0.0


async def _records(client: httpx.AsyncClient) -> dict[str, int]:
    return {table: await count(client, table) for table in RECORD_TABLES}


@pytest.fixture
async def client(settings: Settings):  # type: ignore[no-untyped-def]
    async with running_app(create_app, settings) as client:
        await schedule(client)
        yield client


async def test_a_webhook_id_reused_with_another_body_is_refused_409_and_counted(client: httpx.AsyncClient) -> None:
    first = await deliver(client, completion_document(staff_id="A1"), msg_id="msg_reused")
    assert first.status_code == 200
    before, counted = await _records(client), _reused("webhook-id")
    with capture_logs() as logged:
        other = await deliver(client, completion_document(staff_id="A2"), msg_id="msg_reused")
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    problem = other.json()
    assert (problem["code"], problem["id_kind"]) == ("DELIVERY_ID_REUSED", "webhook-id")
    assert problem["title_ja"] and problem["title"]
    assert await _records(client) == before
    assert _reused("webhook-id") == counted + 1
    warnings = [entry for entry in logged if entry.get("event") == "webhook_delivery_id_reused"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert "A2" not in json.dumps(warnings[0])  # nothing of the body


async def test_a_true_retry_with_the_same_body_is_2xx_and_changes_nothing(client: httpx.AsyncClient) -> None:
    document = completion_document(staff_id="A1")
    assert (await deliver(client, document, msg_id="msg_retry")).status_code == 200
    before, counted = await _records(client), _reused("webhook-id")
    # The same content, formatted differently, under the same webhook-id: a retry.
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    retried = await client.post("/webhooks/elearning", content=body, headers=sign(TEST_WEBHOOK_SECRET, body, "msg_retry"))
    assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
    assert await _records(client) == before
    assert _reused("webhook-id") == counted


async def test_a_statement_id_reused_with_another_body_is_refused_409(client: httpx.AsyncClient) -> None:
    original = statement("completed", staff_id="A1")
    assert (await deliver(client, original)).status_code == 200
    before, counted = await _records(client), _reused("statement id")
    changed = dict(original, result={"completion": True, "score": {"scaled": 0.1}})
    refused = await deliver(client, changed)
    assert (refused.status_code, refused.json()["code"], refused.json()["id_kind"]) == (
        409,
        "DELIVERY_ID_REUSED",
        "statement id",
    )
    assert await _records(client) == before
    assert _reused("statement id") == counted + 1
    again = await deliver(client, original)  # the same statement in a new delivery: a retry
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")


async def test_a_completion_id_reused_with_another_body_is_refused_409(client: httpx.AsyncClient) -> None:
    assert (await deliver(client, completion_document(completion_id="lms-1", staff_id="A1"))).status_code == 200
    before = await _records(client)
    refused = await deliver(client, completion_document(completion_id="lms-1", staff_id="A9"))
    assert (refused.status_code, refused.json()["id_kind"]) == (409, "completion id")
    assert await _records(client) == before
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_a_batch_holding_one_reused_statement_id_is_refused_whole(client: httpx.AsyncClient) -> None:
    original = statement("completed", staff_id="A1")
    assert (await deliver(client, original)).status_code == 200
    before = await _records(client)
    fresh = statement("completed", staff_id="A2")
    changed = dict(original, timestamp="2025-06-02T10:00:00+09:00")
    refused = await deliver(client, [fresh, changed])
    assert (refused.status_code, refused.json()["code"]) == (409, "DELIVERY_ID_REUSED")
    assert await _records(client) == before
