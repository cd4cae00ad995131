"""Dead-letter queue depths, read from the broker with a passive declare (it never creates a queue)."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aiormq.exceptions import ChannelNotFoundEntity

from dx_shared.bus import CONSUMER_QUEUES, dead_letter_queue_name
from dx_shared.logging import get_logger
from dx_shared.settings import Settings

log = get_logger(__name__)



def watched_dead_letter_queues(settings: Settings) -> list[str]:
    """The DLQ beside every consumer queue of the system, named as the services declare them."""
    return [dead_letter_queue_name(settings.queue_prefix + queue) for queue in CONSUMER_QUEUES]


async def dead_letter_depths(settings: Settings, timeout: float = 3.0) -> list[dict[str, Any]]:
    names = watched_dead_letter_queues(settings)
    try:
        return await asyncio.wait_for(_read_depths(settings.amqp_urls_of("reporting"), names), timeout)
    except Exception as exc:
        log.warning("dead_letter_depths_unavailable", error=type(exc).__name__)
        return [{"queue": name, "messages": None, "status": "unreachable"} for name in names]


async def _connect_any(amqp_urls: list[str]) -> aio_pika.abc.AbstractConnection:
    """The first node of the cluster that answers."""
    for url in amqp_urls[:-1]:
        try:
            return await aio_pika.connect(url, timeout=1.0)
        except (OSError, aio_pika.exceptions.AMQPError):
            continue
    return await aio_pika.connect(amqp_urls[-1], timeout=1.0)


async def _read_depths(amqp_urls: list[str], names: list[str]) -> list[dict[str, Any]]:
    depths: list[dict[str, Any]] = []
    connection = await _connect_any(amqp_urls)
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                depths.append({"queue": name, "messages": queue.declaration_result.message_count, "status": "ok"})
            except ChannelNotFoundEntity:
                depths.append({"queue": name, "messages": None, "status": "not_declared"})
            finally:
                if not channel.is_closed:
                    await channel.close()
    return depths
