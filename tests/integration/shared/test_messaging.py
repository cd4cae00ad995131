"""The outbox, the inbox and dead-lettering, on the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from dx_shared import contracts as c
from dx_shared.bus import DEAD_LETTER_REASON_HEADER, new_broker
from dx_shared.database import create_pool, migrate
from dx_shared.envelope import CloudEvent, new_event
from dx_shared.outbox import OutboxRelay, enqueue
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.support import BusProbe, publish_event, publish_raw, running_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def nominated(staff_id: str) -> CloudEvent:
    return new_event(
        c.TraineeNominated(
            nomination_id=f"n-{staff_id}",
            staff_id=staff_id,
            department_code="D01",
            fiscal_year=2024,
            slot=c.Slot.SELF,
        ),
        subject=staff_id,
    )


async def effects(settings: Settings, staff_id: str | None = None) -> list[str]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM toy.effects WHERE $1::text IS NULL OR staff_id = $1 ORDER BY applied_at",
            staff_id,
        )
    finally:
        await conn.close()
    return [row["event_id"] for row in rows]


async def wait_until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def queue_depth(settings: Settings, name: str) -> int:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def dead_letters(settings: Settings, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    found = []
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
        while (message := await dlq.get(no_ack=True, fail=False)) is not None:
            found.append(message)
    return found


async def test_the_outbox_relay_publishes_what_was_committed_and_nothing_that_was_rolled_back(
    settings: Settings,
) -> None:
    committed, rolled_back = nominated("S-COMMIT"), nominated("S-ROLLBACK")
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        pool = client.app.state.pool  # type: ignore[attr-defined]
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, committed)
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, rolled_back)
                raise RuntimeError("the state change failed")
        await probe.wait_for(lambda events: any(event.id == committed.id for event in events))
        await probe.quiet(1.0)
        assert [event.id for event in probe.events] == [committed.id]
        message = probe.raw[0]
        assert message.message_id == committed.id
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/cloudevents+json"
        assert message.routing_key == "nomination.TraineeNominated.v1"
        published = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
        assert published == 1


async def test_a_message_delivered_twice_has_one_effect(settings: Settings) -> None:
    event = nominated("S-TWICE")
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, event, copies=2)
        await wait_until(lambda: _count_is(settings, "S-TWICE", 1))
        await asyncio.sleep(1.0)
        assert await effects(settings, "S-TWICE") == [event.id]


async def _count_is(settings: Settings, staff_id: str, expected: int) -> bool:
    return len(await effects(settings, staff_id)) == expected


async def test_a_message_whose_handler_fails_transiently_is_retried_and_then_succeeds(
    settings: Settings,
) -> None:
    toy_service.FAILURES["S-FLAKY"] = 2
    event = nominated("S-FLAKY")
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, event)
        await wait_until(lambda: _count_is(settings, "S-FLAKY", 1))
    assert toy_service.FAILURES["S-FLAKY"] == 0
    assert await effects(settings, "S-FLAKY") == [event.id]
    assert await dead_letters(settings, f"{settings.queue_prefix}toy.events") == []


async def test_an_unparseable_message_is_dead_lettered_with_its_reason_and_does_not_block_the_queue(
    settings: Settings,
) -> None:
    queue = f"{settings.queue_prefix}toy.events"
    after = nominated("S-AFTER")
    async with running_app(toy_service.create_app, settings):
        await publish_raw(settings, b"{not json", "nomination.TraineeNominated.v1", message_id="garbage-1")
        await publish_raw(
            settings,
            b'{"specversion":"1.0","id":"x","source":"/dx/nomination","type":"jp.aomori.dx.TraineeNominated.v1",'
            b'"time":"2024-04-01T00:00:00+09:00","data":{"staff_id":42}}',
            "nomination.TraineeNominated.v1",
            message_id="wrong-shape-1",
        )
        await publish_event(settings, nominated("poison"))
        await publish_event(settings, after)
        await wait_until(lambda: _count_is(settings, "S-AFTER", 1))
        await wait_until(lambda: _dlq_has(settings, queue, 3))
    letters = await dead_letters(settings, queue)
    reasons = {message.message_id: str(message.headers[DEAD_LETTER_REASON_HEADER]) for message in letters}
    assert "not JSON" in reasons["garbage-1"]
    assert "does not fit" in reasons["wrong-shape-1"]
    assert any("poison" in reason for reason in reasons.values())
    assert await effects(settings) == [after.id]


async def _dlq_has(settings: Settings, queue: str, count: int) -> bool:
    return await queue_depth(settings, f"{queue}.dlq") >= count


async def test_unknown_event_types_and_unknown_fields_are_tolerated(settings: Settings) -> None:
    known = nominated("S-EXTRA")
    data = dict(known.data, a_field_from_the_future="ignored")
    with_extra = known.model_copy(update={"data": data, "brandnewextension": "x"})
    unknown = known.model_copy(update={"id": "unknown-1", "type": "jp.aomori.dx.SomethingNew.v1"})
    queue = f"{settings.queue_prefix}toy.events"
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, unknown)
        await publish_event(settings, with_extra)
        await wait_until(lambda: _count_is(settings, "S-EXTRA", 1))
    assert await dead_letters(settings, queue) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_toy(settings: Settings, *, die_before_ack: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "DX_DATABASE_URL": settings.database_url,
            "DX_AMQP_URL": settings.amqp_url,
            "DX_EXCHANGE": settings.exchange,
            "DX_DEAD_LETTER_EXCHANGE": settings.dead_letter_exchange,
            "DX_QUEUE_PREFIX": settings.queue_prefix,
            "DX_LOG_LEVEL": "WARNING",
            "DX_TOY_PORT": str(port),
            "DX_TOY_DIE_BEFORE_ACK": "1" if die_before_ack else "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    process = subprocess.Popen([sys.executable, "-m", "tests.integration.shared.toy_service"], cwd=ROOT, env=env)
    return process, port


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_consumer_killed_after_its_commit_but_before_its_ack_loses_nothing_and_counts_once(
    settings: Settings,
) -> None:
    event = nominated("S-KILLED")
    queue = f"{settings.queue_prefix}toy.events"
    doomed, port = _start_toy(settings, die_before_ack=True)
    try:
        await wait_until(lambda: _ready(port), timeout=60)
        await publish_event(settings, event)
        exit_code = await asyncio.to_thread(doomed.wait, 30)
        assert exit_code == 3, "the consumer should have died between its commit and its ack"
    finally:
        if doomed.poll() is None:
            doomed.send_signal(signal.SIGKILL)
    assert await effects(settings, "S-KILLED") == [event.id]
    assert await queue_depth(settings, queue) == 1, "the unacked message must be back in the queue"

    survivor, port = _start_toy(settings, die_before_ack=False)
    try:
        await wait_until(lambda: _ready(port), timeout=60)
        await wait_until(lambda: _depth_is(settings, queue, 0), timeout=30)
    finally:
        survivor.send_signal(signal.SIGTERM)
        await asyncio.to_thread(survivor.wait, 30)
    assert await effects(settings, "S-KILLED") == [event.id]
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM toy.inbox WHERE event_id = $1", event.id) == 1
    finally:
        await conn.close()


async def _depth_is(settings: Settings, queue: str, depth: int) -> bool:
    return await queue_depth(settings, queue) == depth


async def test_a_message_that_keeps_failing_is_dead_lettered_after_the_delivery_limit(settings: Settings) -> None:
    settings = settings.model_copy(update={"delivery_limit": 2})
    toy_service.FAILURES["S-DOOMED"] = 1_000
    queue = f"{settings.queue_prefix}toy.events"
    after = nominated("S-NEXT")
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, nominated("S-DOOMED"))
        await publish_event(settings, after)
        await wait_until(lambda: _dlq_has(settings, queue, 1), timeout=30)
        await wait_until(lambda: _count_is(settings, "S-NEXT", 1))
    attempts = 1_000 - toy_service.FAILURES["S-DOOMED"]
    assert 2 <= attempts <= 3, f"bounded retries expected, saw {attempts}"
    assert await effects(settings, "S-DOOMED") == [], "every failed attempt was rolled back"
    letters = await dead_letters(settings, queue)
    assert len(letters) == 1
    assert letters[0].headers["x-death"][0]["reason"] in ("delivery_limit", "rejected")


async def test_any_request_declaring_a_body_over_the_upload_limit_is_refused_with_413(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_upload_bytes": 1024})
    async with running_app(toy_service.create_app, settings) as client:
        response = await client.post("/anything", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_published_outbox_rows_are_purged_after_the_retention_and_unpublished_ones_never(
    settings: Settings,
) -> None:
    pool = await create_pool(settings.database_url, "toy")
    try:
        await migrate(pool, "toy", toy_service.MIGRATIONS)
        old, fresh, stuck = nominated("S-OLD"), nominated("S-FRESH"), nominated("S-STUCK")
        async with pool.acquire() as conn, conn.transaction():
            for event in (old, fresh, stuck):
                await enqueue(conn, event)
            await conn.execute("UPDATE outbox SET published_at = now() - interval '8 days' WHERE event_id = $1", old.id)
            await conn.execute("UPDATE outbox SET published_at = now() - interval '1 day' WHERE event_id = $1", fresh.id)
            await conn.execute("UPDATE outbox SET created_at = now() - interval '30 days' WHERE event_id = $1", stuck.id)
        relay = OutboxRelay(pool=pool, broker=new_broker(settings, "toy"), settings=settings, service="toy")
        purged = await relay.purge_published()
        kept = {row["event_id"]: row["published_at"] for row in await pool.fetch("SELECT * FROM outbox")}
    finally:
        await pool.close()
    assert purged == 1
    assert old.id not in kept
    assert fresh.id in kept
    assert kept[stuck.id] is None, "an event never published is kept, however old"


async def test_an_event_carrying_a_value_postgres_cannot_store_is_dead_lettered_at_once(settings: Settings) -> None:
    queue = f"{settings.queue_prefix}toy.events"
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, nominated("S-\x00-NUL"))
        await wait_until(lambda: _dlq_has(settings, queue, 1), timeout=30)
    letters = await dead_letters(settings, queue)
    assert len(letters) == 1
    assert "unstorable value" in str(letters[0].headers[DEAD_LETTER_REASON_HEADER])
    assert "x-death" not in letters[0].headers, "dead-lettered at once, not after the delivery limit"
