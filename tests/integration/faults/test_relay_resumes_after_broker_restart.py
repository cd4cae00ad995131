"""Faults: after its RabbitMQ node restarts, the outbox relay resumes publishing within about a second
of the node answering AMQP again (issue 10, "The outbox relays recover at once").

The toy service runs in-process against a private single RabbitMQ node (tests/support/rabbit_cluster.py),
with a poll interval far too long to matter, so only the relay's own recovery counts. Events committed
while the node is down wait in the outbox (PostgreSQL); a durable queue bound on the node collects what
the relay publishes. Before the fix the relay slept up to 30 s between attempts and the broker connection
retried every 5 s, so the first event arrived 15-30 s after the node came back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aio_pika
import pytest

from dx_shared.outbox import enqueue
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import nominated
from tests.support import running_app
from tests.support.rabbit_cluster import Node, RabbitCluster, private_rabbit, server_scripts
from tests.support.services import pool_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(server_scripts() is None, reason="no RabbitMQ server scripts: no private node can be started"),
]

POLL_NEVER = 60.0
# "About a second": generous against a busy machine, far below the 15-30 s before the fix.
RESUME_BOUND = 3.0


@pytest.fixture
def rabbit() -> Iterator[tuple[RabbitCluster, Node]]:
    with private_rabbit() as started:
        yield started


class Collector:
    """Consumes a durable queue bound to the events exchange; records each message id with its arrival."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self._changed = asyncio.Event()

    async def consume(self, connection: aio_pika.abc.AbstractConnection, settings: Settings, queue: str) -> None:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        declared = await channel.declare_queue(queue, durable=True)
        await declared.bind(exchange, routing_key="nomination.#")
        await declared.consume(self._on_message)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.arrivals.append((str(message.message_id), time.monotonic()))
        self._changed.set()
        await message.ack()

    @property
    def ids(self) -> list[str]:
        return [message_id for message_id, _ in self.arrivals]

    async def wait_for(self, wanted: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.ids):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; the queue delivered {self.ids}, wanted {sorted(wanted)}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass


async def _answering(url: str, timeout: float) -> tuple[aio_pika.abc.AbstractConnection, float]:
    """Opens a plain AMQP connection as soon as the node accepts one; returns it and that moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await aio_pika.connect(url, timeout=2)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            return connection, time.monotonic()


async def test_publishing_resumes_within_about_a_second_of_a_restarted_node_answering(
    settings: Settings, rabbit: tuple[RabbitCluster, Node]
) -> None:
    cluster, node = rabbit
    on_node = settings.model_copy(update={"amqp_url": node.url, "outbox_poll_interval": POLL_NEVER})
    queue = f"{settings.queue_prefix}relay-restart"
    before = nominated("S-RESTART-BEFORE")
    during = [nominated(f"S-RESTART-{n}") for n in range(3)]

    async with running_app(toy_service.create_app, on_node) as client:
        pool = pool_of(client)
        first = Collector()
        connection: aio_pika.abc.AbstractConnection = await aio_pika.connect(node.url)
        await first.consume(connection, on_node, queue)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, before)
        await first.wait_for({before.id}, timeout=10)
        published = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        deadline = time.monotonic() + 10
        while await pool.fetchval(published) != 0:
            assert time.monotonic() < deadline, "the first event was never marked published"
            await asyncio.sleep(0.1)
        await connection.close()

        await asyncio.to_thread(cluster.stop_node, node)
        for event in during:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
        assert await pool.fetchval(published) == len(during), "the outbox commits while the broker is down"
        down = await client.get("/readyz")
        assert down.status_code == 503, down.text
        assert down.json()["checks"]["broker"] != "ok"
        assert "Retry-After" in down.headers
        # Long enough for a relay with an exponential back-off to have grown it to several seconds.
        await asyncio.sleep(6.0)

        boot = asyncio.create_task(asyncio.to_thread(cluster.start_node, node))
        connection, answered = await _answering(node.url, timeout=90)
        await boot
        try:
            after = Collector()
            await after.consume(connection, on_node, queue)
            await after.wait_for({event.id for event in during}, timeout=30)
            resumed = after.arrivals[0][1] - answered
            print(f"\nthe first pending event arrived {resumed:.2f} s after the node answered AMQP again")
            await asyncio.sleep(1.5)  # any duplicate would arrive now
        finally:
            await connection.close()
        assert resumed < RESUME_BOUND, f"publishing resumed {resumed:.2f} s after the node answered again"
        assert sorted(after.ids) == sorted(event.id for event in during), "each pending event exactly once"
        assert first.ids == [before.id]

        deadline = time.monotonic() + 10
        while (ready := await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, f"/readyz stays {ready.status_code}: {ready.text}"
            await asyncio.sleep(0.2)
        assert await pool.fetchval(published) == 0
