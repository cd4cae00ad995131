"""A learning record store forwards xAPI statements in batches: each is counted as if it came alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration.training.conftest import count, deliver, outbox_count, schedule, statement

pytestmark = pytest.mark.integration


async def recorded(client: httpx.AsyncClient) -> tuple[int, ...]:
    return (
        await count(client, "webhook_deliveries"),
        await count(client, "reported_results"),
        await count(client, "completions"),
        await count(client, "unmatched_results"),
        await count(client, "outbox"),
    )


async def test_a_mixed_batch_answers_one_receipt_per_statement_in_order(client: httpx.AsyncClient) -> None:
    await schedule(client)
    seen_before = statement("completed", staff_id="A1001")
    assert (await deliver(client, seen_before)).json()["status"] == "completed"
    new = statement("completed", staff_id="A1002")
    unknown_session = statement("completed", staff_id="A1003")
    unknown_session["object"]["id"] = "https://lms.example.jp/activities/S-NOPE"
    failed = statement("failed", staff_id="A1004")

    response = await deliver(client, [new, seen_before, unknown_session, failed], msg_id="msg_batch_1")

    assert response.status_code == 200, response.text
    receipts = response.json()["receipts"]
    assert [receipt["status"] for receipt in receipts] == ["completed", "duplicate", "unmatched", "not_met"]
    assert receipts[0]["completion"]["staff_id"] == "A1002"
    assert receipts[2]["unmatched_id"] and receipts[2]["reason"] == "UNKNOWN_SESSION"
    assert await count(client, "completions") == 2
    assert await outbox_count(client, "SessionCompleted") == 2
    assert await outbox_count(client, "CompletionUnmatched") == 1


async def test_a_retried_batch_answers_2xx_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await schedule(client)
    batch = [statement("completed", staff_id=f"A{n}") for n in range(1001, 1006)]
    first = await deliver(client, batch, msg_id="msg_batch_retry")
    after_first = await recorded(client)

    retry = await deliver(client, batch, msg_id="msg_batch_retry")

    assert [r["status"] for r in first.json()["receipts"]] == ["completed"] * 5
    assert retry.status_code == 200
    assert [r["status"] for r in retry.json()["receipts"]] == ["duplicate"] * 5
    assert await recorded(client) == after_first
    assert await outbox_count(client, "SessionCompleted") == 5


async def test_the_same_statements_in_another_batch_are_counted_once(client: httpx.AsyncClient) -> None:
    await schedule(client)
    batch = [statement("completed", staff_id=f"A{n}") for n in range(1001, 1004)]
    await deliver(client, batch)
    again = await deliver(client, list(reversed(batch)))
    assert [r["status"] for r in again.json()["receipts"]] == ["duplicate"] * 3
    assert await count(client, "completions") == 3


async def test_a_bad_statement_in_the_middle_refuses_the_whole_batch_and_records_nothing(
    client: httpx.AsyncClient,
) -> None:
    await schedule(client)
    before = await recorded(client)
    broken = statement("completed", staff_id="A1002")
    del broken["actor"]["account"]

    response = await deliver(
        client, [statement("completed", staff_id="A1001"), broken, statement("completed", staff_id="A1003")]
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "UNSUPPORTED_PAYLOAD"
    assert problem["position"] == 1 and problem["errors"][0]["loc"][0] == 1
    assert await recorded(client) == before


async def test_a_completion_document_is_not_a_statement_of_a_batch(client: httpx.AsyncClient) -> None:
    await schedule(client)
    before = await recorded(client)
    response = await deliver(client, [statement("completed"), {"type": "completion", "session_id": "S"}])
    assert (response.status_code, response.json()["code"]) == (422, "UNSUPPORTED_PAYLOAD")
    assert await recorded(client) == before


async def test_a_batch_holds_one_to_a_hundred_statements(client: httpx.AsyncClient) -> None:
    await schedule(client)
    before = await recorded(client)
    too_many = await deliver(client, [statement("completed", staff_id=f"A{n}") for n in range(101)])
    empty = await deliver(client, [])
    assert (too_many.status_code, too_many.json()["code"], too_many.json()["limit"]) == (413, "BATCH_TOO_LARGE", 100)
    assert (empty.status_code, empty.json()["code"]) == (422, "EMPTY_BATCH")
    assert await recorded(client) == before

    full = await deliver(client, [statement("completed", staff_id=f"A{n}") for n in range(100)])
    assert full.status_code == 200 and len(full.json()["receipts"]) == 100
    assert await count(client, "completions") == 100


async def test_statements_without_ids_in_one_batch_stay_separate(client: httpx.AsyncClient) -> None:
    await schedule(client, move_on="completed_and_passed")
    completed, passed = statement("completed"), statement("passed")
    del completed["id"], passed["id"]
    response = await deliver(client, [completed, passed])
    assert sorted(r["status"] for r in response.json()["receipts"]) == ["completed", "not_met"]
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_concurrent_copies_and_overlapping_batches_count_each_statement_once(client: httpx.AsyncClient) -> None:
    await schedule(client)
    statements = [statement("completed", staff_id=f"A{n}") for n in range(1001, 1011)]
    copies = [deliver(client, statements, msg_id="msg_same_batch") for _ in range(10)]
    overlapping = [deliver(client, statements[::step]) for step in (-1, 2, -3)]

    responses = await asyncio.gather(*copies, *overlapping)

    assert {response.status_code for response in responses} == {200}
    assert await count(client, "completions") == 10
    assert await outbox_count(client, "SessionCompleted") == 10
