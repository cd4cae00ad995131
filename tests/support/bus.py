"""A probe that collects CloudEvents from the exchange, and publishing as another service would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import aio_pika

from dx_shared.envelope import CONTENT_TYPE, CloudEvent
from dx_shared.settings import Settings


class BusProbe:
    """Binds a private queue to the events exchange and records every CloudEvent that matches."""

    def __init__(self, settings: Settings, patterns: Iterable[str] = ("#",)) -> None:
        self._settings = settings
        self._patterns = list(patterns)
        self.events: list[CloudEvent] = []
        self.raw: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._connection: Any = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> BusProbe:
        self._connection = await aio_pika.connect_robust(self._settings.amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(self._settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for pattern in self._patterns:
            await queue.bind(exchange, routing_key=pattern)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._connection.close()

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.raw.append(message)
        self.events.append(CloudEvent.model_validate(json.loads(message.body)))
        self._changed.set()

    def of_type(self, event_name: str) -> list[CloudEvent]:
        return [event for event in self.events if event.type == f"jp.aomori.dx.{event_name}.v1"]

    async def wait_for(self, predicate: Callable[[list[CloudEvent]], bool], timeout: float = 15.0) -> list[CloudEvent]:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                types = [event.type.removeprefix("jp.aomori.dx.") for event in self.events]
                raise AssertionError(f"timed out; the probe saw {len(types)} events: {types}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass
        return self.events

    async def wait_for_type(self, event_name: str, count: int = 1, timeout: float = 15.0) -> list[CloudEvent]:
        await self.wait_for(lambda _events: len(self.of_type(event_name)) >= count, timeout)
        return self.of_type(event_name)

    async def quiet(self, seconds: float = 1.0, timeout: float = 30.0) -> None:
        """Waits until no event has arrived for `seconds`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = len(self.events)
            await asyncio.sleep(seconds)
            if len(self.events) == seen:
                return
        raise AssertionError("the bus never went quiet")


async def publish_raw(
    settings: Settings,
    body: bytes,
    routing_key: str,
    *,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(
                body,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
                headers=headers or {},
            ),
            routing_key=routing_key,
        )


async def publish_event(settings: Settings, event: CloudEvent, *, copies: int = 1) -> None:
    """Publishes a CloudEvent as its producing service would (persistent, confirmed, message_id = id)."""
    producer = event.source.rsplit("/", 1)[-1]
    routing_key = f"{producer}.{event.type.removeprefix('jp.aomori.dx.')}"
    for _ in range(copies):
        await publish_raw(settings, event.to_bytes(), routing_key, message_id=event.id)


async def publish_events(settings: Settings, events: Iterable[CloudEvent]) -> None:
    """As `publish_event` for each event in order, over one connection and one confirmed channel."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for event in events:
            producer = event.source.rsplit("/", 1)[-1]
            await exchange.publish(
                aio_pika.Message(
                    event.to_bytes(),
                    content_type=CONTENT_TYPE,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=event.id,
                ),
                routing_key=f"{producer}.{event.type.removeprefix('jp.aomori.dx.')}",
            )
