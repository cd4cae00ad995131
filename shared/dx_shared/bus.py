"""Bus topology: the `dx.events` topic exchange, quorum queues with a delivery limit, and dead-letter queues.

FastStream declares only what its subscribers reference, so the dead-letter exchange, the dead-letter
queues and the extra bindings are declared here at start-up (STACK-NOTES.md).

The broker may be a cluster: `DX_AMQP_URL` lists its nodes, and the connection (`ClusterConnection`)
tries them in turn, at start-up and whenever the node it is on goes away; FastStream's robust channels
then restore the consumers on the new node. Quorum queues are replicated to
`DX_QUORUM_INITIAL_GROUP_SIZE` nodes (the broker's default when unset).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from aio_pika import RobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from yarl import URL

from dx_shared.envelope import CONTENT_TYPE
from dx_shared.settings import Settings

DEAD_LETTER_REASON_HEADER = "x-dx-dead-letter-reason"

# Every consumer queue of the system (`<service>.<purpose>`), so that operations can watch all of their
# dead-letter queues; a test keeps it equal to the services' subscriptions.
CONSUMER_QUEUES = ("nomination.events", "training.rosters", "progression.facts", "reporting.events")


def queue_name(service: str, purpose: str) -> str:
    return f"{service}.{purpose}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def events_exchange(settings: Settings) -> RabbitExchange:
    return RabbitExchange(settings.exchange, type=ExchangeType.TOPIC, durable=True)


def dead_letter_exchange(settings: Settings) -> RabbitExchange:
    return RabbitExchange(settings.dead_letter_exchange, type=ExchangeType.DIRECT, durable=True)


def _replication(settings: Settings | None) -> dict[str, Any]:
    """Queue arguments from settings: the quorum group size, and an expiry for throw-away queues."""
    arguments: dict[str, Any] = {}
    if settings is not None and settings.quorum_initial_group_size is not None:
        arguments["x-quorum-initial-group-size"] = settings.quorum_initial_group_size
    if settings is not None and settings.queue_expires_ms is not None:
        # Each quorum queue holds a few of the broker's file handles until it is deleted.
        arguments["x-expires"] = settings.queue_expires_ms
    return arguments


def consumer_queue(settings: Settings, name: str) -> RabbitQueue:
    arguments: dict[str, Any] = {
        **_replication(settings),
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": settings.dead_letter_exchange,
        "x-dead-letter-routing-key": dead_letter_queue_name(name),
        # at-least-once dead-lettering is quorum-only and needs reject-publish overflow (RabbitMQ 3.10+).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    return RabbitQueue(name, QueueType.QUORUM, arguments=cast(Any, arguments))


def dead_letter_queue(name: str, settings: Settings | None = None) -> RabbitQueue:
    return RabbitQueue(dead_letter_queue_name(name), QueueType.QUORUM, arguments=cast(Any, _replication(settings)))


class ClusterConnection(RobustConnection):
    """aio-pika's robust connection over several nodes of one cluster.

    Each connection attempt tries every address once, starting with the current one; when a live
    connection is lost, the next attempt starts with the next node (the lost one is probably down).
    Only when every node refuses does the attempt fail (and, at start-up, `fail_fast` applies).
    """

    def __init__(
        self, url: URL, loop: asyncio.AbstractEventLoop | None = None, *, cluster: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(url, loop=loop, **kwargs)
        # The first address carries the connection parameters FastStream put in its query; share them.
        others = [URL(address).update_query(self.url.query) for address in cluster[1:]]
        self.addresses: tuple[URL, ...] = (self.url, *others)
        self._current = 0
        self._was_connected = False

    # RobustConnection calls its private `__connect_transport` for every (re)connection attempt.
    async def _RobustConnection__connect_transport(self) -> None:
        if self._was_connected:
            # The node this connection was on went away: begin with the next one.
            self._was_connected = False
            self._current = (self._current + 1) % len(self.addresses)
        failure: BaseException | None = None
        for _ in self.addresses:
            self.url = self.addresses[self._current]
            try:
                await _connect_transport(self)
            except CONNECTION_EXCEPTIONS as exc:
                failure = exc
                self._current = (self._current + 1) % len(self.addresses)
            else:
                self._was_connected = True
                return
        raise failure or RuntimeError("no broker address to connect to")


_connect_transport = RobustConnection._RobustConnection__connect_transport  # type: ignore[attr-defined]


def new_broker(settings: Settings, service: str) -> RabbitBroker:
    urls = settings.amqp_urls_of(service)
    broker = RabbitBroker(
        urls[0],
        app_id=f"dx-{service}",
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
        timeout=10.0,
        # Short, so publishing and consuming resume within about a second of the broker answering again.
        reconnect_interval=settings.broker_reconnect_interval,
        # Spans for consuming and publishing, with the W3C trace context in the AMQP headers.
        middlewares=[RabbitTelemetryMiddleware()],
    )
    # RabbitBroker passes these keyword arguments to aio-pika's `connect_robust`, which builds the
    # connection with `connection_class`.
    broker._connection_kwargs["connection_class"] = functools.partial(ClusterConnection, cluster=urls)
    return broker


async def renew_publishing_channel(broker: RabbitBroker) -> None:
    """Replaces the server side of the channel the broker publishes on (same aio-pika object).

    On RabbitMQ 3.10, a channel whose first publish to a quorum queue comes while the queue's recorded
    leader is a node that just died asks that dead node, gives up, and nacks every later publish to the
    queue for the channel's lifetime. A new channel asks again and finds the new leader, so the outbox
    relay calls this when the broker nacks its publishes.
    """
    channel = await broker.config.channel_manager.get_channel()
    with contextlib.suppress(Exception):
        await channel.close()
    await channel.reopen()


async def declare_topology(broker: RabbitBroker, settings: Settings, bindings: Mapping[str, Iterable[str]]) -> None:
    """Declares the exchanges and, per consumer queue, the queue, its DLQ and its routing-key bindings."""
    exchange = await broker.declare_exchange(events_exchange(settings))
    dlx = await broker.declare_exchange(dead_letter_exchange(settings))
    for name, routing_keys in bindings.items():
        dlq = await broker.declare_queue(dead_letter_queue(name, settings))
        await dlq.bind(dlx, routing_key=dead_letter_queue_name(name))
        queue = await broker.declare_queue(consumer_queue(settings, name))
        for routing_key in routing_keys:
            await queue.bind(exchange, routing_key=routing_key)


async def publish_event_bytes(
    broker: RabbitBroker,
    settings: Settings,
    *,
    body: bytes,
    routing_key: str,
    event_id: str,
    correlation_id: str | None,
) -> None:
    """Publishes one persistent CloudEvent and waits for the broker's confirm."""
    await broker.publish(
        body,
        exchange=events_exchange(settings),
        routing_key=routing_key,
        persist=True,
        mandatory=False,
        message_id=event_id,
        correlation_id=correlation_id or event_id,
        content_type=CONTENT_TYPE,
        timeout=30.0,
    )
