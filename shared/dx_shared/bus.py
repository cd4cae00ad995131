"""Bus topology: the `dx.events` topic exchange, quorum queues with a delivery limit, and dead-letter queues.

FastStream declares only what its subscribers reference, so the dead-letter exchange, the dead-letter
queues and the extra bindings are declared here at start-up (STACK-NOTES.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

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


def consumer_queue(settings: Settings, name: str) -> RabbitQueue:
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": settings.dead_letter_exchange,
        "x-dead-letter-routing-key": dead_letter_queue_name(name),
        # at-least-once dead-lettering is quorum-only and needs reject-publish overflow (RabbitMQ 3.10+).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    return RabbitQueue(name, QueueType.QUORUM, arguments=cast(Any, arguments))


def dead_letter_queue(name: str) -> RabbitQueue:
    return RabbitQueue(dead_letter_queue_name(name), QueueType.QUORUM)


def new_broker(settings: Settings, service: str) -> RabbitBroker:
    return RabbitBroker(
        settings.amqp_url,
        app_id=f"dx-{service}",
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
        # Short, so publishing and consuming resume within about a second of the broker answering again.
        reconnect_interval=settings.broker_reconnect_interval,
    )


async def declare_topology(broker: RabbitBroker, settings: Settings, bindings: Mapping[str, Iterable[str]]) -> None:
    """Declares the exchanges and, per consumer queue, the queue, its DLQ and its routing-key bindings."""
    exchange = await broker.declare_exchange(events_exchange(settings))
    dlx = await broker.declare_exchange(dead_letter_exchange(settings))
    for name, routing_keys in bindings.items():
        dlq = await broker.declare_queue(dead_letter_queue(name))
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
