"""Arbitrary bytes and headers thrown at the webhook: never a 500, nothing recorded unless validly signed."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_WEBHOOK_SECRET
from tests.integration.training.conftest import count, schedule
from training.webhook_signing import sign

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
signature_like = st.one_of(
    header_text,
    st.builds(lambda b: f"v1,{b}", st.text(st.sampled_from("ABCDEFabcdef0123456789+/="), max_size=60)),
    st.just("v1,AAAA v2,BBBB"),
)
timestamp_like = st.one_of(header_text, st.integers(-(10**12), 10**12).map(str), st.just(str(int(time.time()))))
fuzzed_headers = st.fixed_dictionaries(
    {},
    optional={
        "webhook-id": header_text,
        "webhook-timestamp": timestamp_like,
        "webhook-signature": signature_like,
        "content-type": st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    },
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
plausible_documents = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["completion", "other"]),
        "session_id": st.one_of(st.just("S-2025-EL-001"), st.text(max_size=20)),
        "staff_id": st.one_of(st.just("A1001"), st.text(max_size=20)),
        "occurred_at": st.one_of(
            st.just("2025-03-31T15:30:00Z"), st.text(max_size=30), st.datetimes().map(lambda d: d.isoformat())
        ),
    },
    optional={"success": json_values, "score": json_values, "completion_id": json_values},
) | st.fixed_dictionaries(
    {"actor": json_values, "verb": json_values, "object": json_values},
    optional={"id": json_values, "result": json_values, "timestamp": json_values},
)


async def recorded(client: httpx.AsyncClient) -> int:
    return await count(client, "webhook_deliveries") + await count(client, "outbox")


@FUZZ
@given(body=st.binary(max_size=2048), headers=fuzzed_headers)
async def test_unsigned_bytes_and_headers_never_get_a_500_and_record_nothing(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> None:
    before = await recorded(client)
    response = await client.post("/webhooks/elearning", content=body, headers=headers)
    assert response.status_code in {400, 401, 413, 422}, response.text
    assert await recorded(client) == before


@FUZZ
@given(document=st.one_of(plausible_documents, json_values), raw=st.one_of(st.none(), st.binary(max_size=512)))
async def test_validly_signed_arbitrary_bodies_never_get_a_500(
    client: httpx.AsyncClient, document: object, raw: bytes | None
) -> None:
    if await count(client, "sessions") == 0:
        await schedule(client)
    body = raw if raw is not None else json.dumps(document).encode()
    try:
        headers = sign(TEST_WEBHOOK_SECRET, body, f"msg_{time.perf_counter_ns()}")
    except UnicodeDecodeError:
        headers = sign(TEST_WEBHOOK_SECRET, b"{}", f"msg_{time.perf_counter_ns()}")
    before = await recorded(client)
    response = await client.post("/webhooks/elearning", content=body, headers=headers)
    assert response.status_code in {200, 202, 400, 422}, response.text
    if response.status_code >= 400:
        assert await recorded(client) == before


@FUZZ
@given(batch=st.lists(st.one_of(plausible_documents, json_values), max_size=6))
async def test_validly_signed_arbitrary_batches_never_get_a_500_and_a_refused_one_records_nothing(
    client: httpx.AsyncClient, batch: list[object]
) -> None:
    if await count(client, "sessions") == 0:
        await schedule(client)
    body = json.dumps(batch).encode()
    headers = sign(TEST_WEBHOOK_SECRET, body, f"msg_{time.perf_counter_ns()}")
    before = await recorded(client)
    response = await client.post("/webhooks/elearning", content=body, headers=headers)
    assert response.status_code in {200, 422}, response.text
    if response.status_code == 422:
        assert await recorded(client) == before
    else:
        assert len(response.json()["receipts"]) == len(batch)
