"""Consuming events: inbox deduplication in the effect's transaction, dead-lettering, bounded retry.

Every subscriber in every service goes through `consume`, so the rules live in one place:
- an event id already in the service's inbox has no second effect (redeliveries, duplicates);
- the inbox row, the handler's state change and any outbox rows commit together, then the message is
  acked — a consumer killed before its ack loses nothing, the redelivery is deduplicated;
- a message that can never succeed (not a CloudEvent, data not fitting its type, `PermanentFailure`,
  a value PostgreSQL cannot store)
  goes to the dead-letter queue at once with its reason, and the queue moves on;
- anything else is treated as transient and rejected with requeue; the quorum queue's delivery limit
  bounds the retries and then dead-letters it;
- an event whose CloudEvents `source` is not the producer named by its routing key (the broker's topic
  permissions make the routing key the authenticated producer) is dead-lettered at once, never applied;
- unknown event types, and known ones this service did not subscribe to, are acked and ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog
from faststream.rabbit import RabbitBroker

from dx_shared import context
from dx_shared.bus import (
    DEAD_LETTER_REASON_HEADER,
    dead_letter_exchange,
    dead_letter_queue_name,
)
from dx_shared.contracts import EventPayload
from dx_shared.envelope import CloudEvent, MalformedEvent, parse_event, producer_mismatch
from dx_shared.logging import get_logger
from dx_shared.metrics import EVENTS_CONSUMED
from dx_shared.settings import Settings

log = get_logger(__name__)

Handler = Callable[[asyncpg.Connection, CloudEvent, Any], Awaitable[None]]


class PermanentFailure(Exception):
    """The message can never be processed; it is dead-lettered with this reason instead of retried."""


@dataclass(frozen=True)
class Subscription:
    """A consumer queue `<service>.<purpose>` bound to the routing keys of `events`."""

    purpose: str
    events: Sequence[type[EventPayload]]
    handler: Handler
    description: str = ""
    routing_keys: tuple[str, ...] = field(default=())

    def bindings(self) -> list[str]:
        return [*{model.routing_key() for model in self.events}, *self.routing_keys]

    def accepts(self, payload: EventPayload) -> bool:
        return any(isinstance(payload, model) for model in self.events)


class IncomingMessage(Protocol):
    body: bytes
    headers: Any
    message_id: str | None
    routing_key: str | None

    async def ack(self) -> None: ...

    async def reject(self, requeue: bool = False) -> None: ...



async def dead_letter(
    broker: RabbitBroker, settings: Settings, queue: str, message: IncomingMessage, reason: str
) -> None:
    """Copies the message to the queue's DLQ with the reason (confirmed) before the original is acked."""
    headers = dict(message.headers or {})
    headers[DEAD_LETTER_REASON_HEADER] = reason[:1000]
    headers["x-dx-original-queue"] = queue
    if message.routing_key:
        headers["x-dx-original-routing-key"] = message.routing_key
    await broker.publish(
        message.body,
        exchange=dead_letter_exchange(settings),
        routing_key=dead_letter_queue_name(queue),
        persist=True,
        mandatory=False,
        message_id=message.message_id or None,
        headers=headers,
        timeout=30.0,
    )


async def process(
    pool: asyncpg.Pool, subscription: Subscription, raw: bytes, routing_key: str | None = None
) -> tuple[str, CloudEvent | None, str | None]:
    """Parses and applies one message; returns (outcome, event, reason). Raises on transient failure.

    `routing_key` is the key the message was published with (None only for events replayed from a
    store, which were checked when they arrived): an event whose source is not the producer it names
    is dead-lettered, never applied.
    """
    try:
        event = parse_event(raw)
        payload = event.payload()
    except MalformedEvent as exc:
        return "dead_lettered", None, str(exc)
    if routing_key is not None:
        mismatch = producer_mismatch(event, routing_key)
        if mismatch is not None:
            return "dead_lettered", event, f"producer mismatch: {mismatch}"
    if payload is None or not subscription.accepts(payload):
        return "ignored", event, None
    tokens = context.bind(event.correlationid or event.id, event.id)
    try:
        with structlog.contextvars.bound_contextvars(event_id=event.id, event_type=event.type):
            async with pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO inbox (event_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                    event.id,
                    event.type,
                )
                if not fresh:
                    return "duplicate", event, None
                try:
                    await subscription.handler(conn, event, payload)
                except PermanentFailure as exc:
                    raise _Rollback(str(exc)) from exc
                except asyncpg.DataError as exc:
                    # PostgreSQL class 22: the event carries a value that can never be stored (e.g. NUL).
                    raise _Rollback(f"unstorable value: {type(exc).__name__}: {exc}") from exc
    except _Rollback as exc:
        return "dead_lettered", event, exc.reason
    finally:
        context.reset(tokens)
    return "processed", event, None


class _Rollback(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def consume(
    *,
    pool: asyncpg.Pool,
    broker: RabbitBroker,
    settings: Settings,
    service: str,
    queue: str,
    subscription: Subscription,
    message: IncomingMessage,
) -> None:
    try:
        outcome, event, reason = await process(pool, subscription, message.body, message.routing_key or "")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        EVENTS_CONSUMED.labels(service, queue, "?", "retried").inc()
        log.warning(
            "event_retry",
            queue=queue,
            message_id=message.message_id,
            error=type(exc).__name__,
            message=str(exc)[:300],
        )
        await message.reject(requeue=True)
        return
    event_type = event.type if event else "?"
    EVENTS_CONSUMED.labels(service, queue, event_type, outcome).inc()
    if outcome == "dead_lettered":
        log.warning("event_dead_lettered", queue=queue, message_id=message.message_id, reason=(reason or "")[:300])
        await dead_letter(broker, settings, queue, message, reason or "unprocessable")
    else:
        log.debug("event_" + outcome, queue=queue, event_id=event.id if event else None)
    await message.ack()
