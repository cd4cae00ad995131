"""The minimal correct pipeline the services are measured against, on the same database server, broker
and machine, in the same run: a producer publishes persistent event-sized messages with pipelined
confirms to a quorum queue; a consumer takes what has arrived, and in one transaction inserts the event
ids into an inbox (deduplicating) and adds their number to a counter (upsert), then acknowledges them all
with one multiple-ack after the commit. Its figure is events applied per second while its producer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

QUEUE = "bench.minimal"
BATCH = 500
PREFETCH = 1000
IN_FLIGHT = 500

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS minimal;
CREATE TABLE IF NOT EXISTS minimal.inbox (event_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS minimal.counters (name text PRIMARY KEY, n bigint NOT NULL);
"""


@dataclass
class MinimalResult:
    applied_per_second: float
    published_per_second: float
    applied: int


def _body(number: int) -> bytes:
    # About the size of a SessionCompleted CloudEvent.
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/dx/bench",
            "type": "jp.aomori.dx.BenchCompleted.v1",
            "time": "2026-04-02T10:00:00+09:00",
            "data": {"session_id": "BENCH-S1", "staff_id": f"M{number:07d}", "fiscal_year": 2026, "padding": "x" * 200},
        }
    ).encode()


async def run(amqp_url: str, database_url: str, seconds: float) -> MinimalResult:
    db = await asyncpg.connect(database_url)
    await db.execute(SCHEMA_SQL)
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=PREFETCH)
        queue = await consuming.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        applied = 0
        arrived: list[AbstractIncomingMessage] = []
        wake = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            arrived.append(message)
            wake.set()

        async def apply() -> None:
            nonlocal applied
            while True:
                await wake.wait()
                wake.clear()
                while arrived:
                    batch, arrived[:] = arrived[:BATCH], arrived[BATCH:]
                    async with db.transaction():
                        fresh = await db.fetchval(
                            "WITH added AS (INSERT INTO minimal.inbox SELECT unnest($1::text[])"
                            " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM added",
                            [message.message_id for message in batch],
                        )
                        await db.execute(
                            "INSERT INTO minimal.counters VALUES ('applied', $1)"
                            " ON CONFLICT (name) DO UPDATE SET n = minimal.counters.n + EXCLUDED.n",
                            fresh,
                        )
                    await batch[-1].ack(multiple=True)
                    applied += len(batch)

        publishing = await connection.channel(publisher_confirms=True)
        published = 0
        stop_at = 0.0

        async def produce() -> None:
            nonlocal published
            window = asyncio.Semaphore(IN_FLIGHT)
            pending: set[asyncio.Task[None]] = set()

            async def one(number: int) -> None:
                nonlocal published
                try:
                    message = aio_pika.Message(
                        _body(number), message_id=uuid.uuid4().hex, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    )
                    await publishing.default_exchange.publish(message, routing_key=QUEUE)
                    published += 1
                finally:
                    window.release()

            number = 0
            while time.monotonic() < stop_at:
                await window.acquire()
                task = asyncio.create_task(one(number))
                pending.add(task)
                task.add_done_callback(pending.discard)
                number += 1
            await asyncio.gather(*pending, return_exceptions=True)

        consumer_tag = await queue.consume(on_message)
        applier = asyncio.create_task(apply())
        # A second of warm-up, then the measured window with the producer live.
        started = time.monotonic()
        stop_at = started + 1.0 + seconds
        producer = asyncio.create_task(produce())
        await asyncio.sleep(1.0)
        applied_before, published_before, window_start = applied, published, time.monotonic()
        await asyncio.sleep(seconds)
        applied_in_window, published_in_window = applied - applied_before, published - published_before
        window = time.monotonic() - window_start
        await producer
        applier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await applier
        await queue.cancel(consumer_tag)
        await queue.delete(if_unused=False, if_empty=False)
        return MinimalResult(applied_in_window / window, published_in_window / window, applied)
    finally:
        await connection.close()
        await db.execute("DROP SCHEMA IF EXISTS minimal CASCADE")
        await db.close()
