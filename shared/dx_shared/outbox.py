"""Transactional outbox: an event is committed with the state change that caused it, then relayed.

`enqueue` runs inside the caller's transaction. The relay takes unpublished rows with
`FOR UPDATE SKIP LOCKED` (so replicas never publish the same row at the same time), publishes each as a
persistent message with publisher confirms, and marks them published in the same transaction. A crash
between the confirm and the commit republishes the row: consumers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker

from dx_shared.bus import publish_event_bytes, renew_publishing_channel
from dx_shared.envelope import CloudEvent
from dx_shared.logging import get_logger
from dx_shared.metrics import EVENTS_PUBLISHED, OUTBOX_FAILURES, OUTBOX_PENDING
from dx_shared.settings import Settings
from dx_shared.tracing import current_traceparent, outbox_parent

log = get_logger(__name__)

_BATCH_WINDOW = 0.01
_PURGE_EVERY = 3600.0


def _routing_key_of(event: CloudEvent) -> str:
    # jp.aomori.dx.<EventName>.v1 from /dx/<producer>  →  <producer>.<EventName>.v1
    producer = event.source.rsplit("/", 1)[-1]
    name_and_version = event.type.removeprefix("jp.aomori.dx.")
    return f"{producer}.{name_and_version}"


def notify_channel(schema: str) -> str:
    return f"dx_outbox_{schema}"


async def enqueue(conn: asyncpg.Connection, event: CloudEvent) -> None:
    """Adds the event to the outbox of the schema on the connection's search_path (the service's own)."""
    await conn.execute(
        "WITH added AS (INSERT INTO outbox (event_id, routing_key, body, correlation_id, traceparent)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING seq)"
        " SELECT pg_notify('dx_outbox_' || current_schema(), '') FROM added",
        event.id,
        _routing_key_of(event),
        event.to_bytes(),
        event.correlationid,
        current_traceparent(),
    )


async def enqueue_many(conn: asyncpg.Connection, events: list[CloudEvent]) -> None:
    if not events:
        return
    traceparent = current_traceparent()
    await conn.executemany(
        "INSERT INTO outbox (event_id, routing_key, body, correlation_id, traceparent) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (event_id) DO NOTHING",
        [(event.id, _routing_key_of(event), event.to_bytes(), event.correlationid, traceparent) for event in events],
    )
    await conn.execute("SELECT pg_notify('dx_outbox_' || current_schema(), '')")


class OutboxRelay:
    """Publishes committed outbox rows with confirms; woken by NOTIFY, polling as a fallback."""

    def __init__(self, *, pool: asyncpg.Pool, broker: RabbitBroker, settings: Settings, service: str) -> None:
        self._pool = pool
        self._broker = broker
        self._settings = settings
        self._service = service
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None

    async def start(self) -> None:
        self._listener = await self._pool.acquire()
        await self._listener.add_listener(notify_channel(self._service), self._on_notify)
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(notify_channel(self._service), self._on_notify)
            await self._pool.release(self._listener)
            self._listener = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def purge_published(self) -> int:
        """Deletes rows published longer ago than the retention; unpublished rows are never touched."""
        status = await self._pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._settings.outbox_retention_days * 86400,
        )
        return int(status.split()[-1])

    async def _run(self) -> None:
        backoff = self._settings.outbox_poll_interval
        next_purge = 0.0
        while True:
            try:
                while await self.publish_batch() > 0:
                    pass
                backoff = self._settings.outbox_poll_interval
                if time.monotonic() >= next_purge:
                    purged = await self.purge_published()
                    if purged:
                        log.info("outbox_purged", rows=purged)
                    next_purge = time.monotonic() + _PURGE_EVERY
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                OUTBOX_FAILURES.labels(self._service).inc()
                log.warning("outbox_publish_failed", error=type(exc).__name__, message=str(exc)[:200])
                backoff = min(max(backoff * 2, 0.5), 30.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            # A short pause after a wake-up lets the rows of concurrent requests share one batch.
            await asyncio.sleep(_BATCH_WINDOW)

    async def _publish(self, row: asyncpg.Record) -> None:
        # Each row is published in the trace of the request or handler that committed it.
        with outbox_parent(row["traceparent"]):
            await publish_event_bytes(
                self._broker,
                self._settings,
                body=bytes(row["body"]),
                routing_key=row["routing_key"],
                event_id=row["event_id"],
                correlation_id=row["correlation_id"],
            )

    async def publish_batch(self) -> int:
        """Publishes up to one batch; returns how many rows were confirmed and marked."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, event_id, routing_key, body, correlation_id, traceparent FROM outbox"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._settings.outbox_batch_size,
            )
            if not rows:
                OUTBOX_PENDING.labels(self._service).set(0)
                return 0
            results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            confirmed = [row["seq"] for row, result in zip(rows, results, strict=True) if result is None]
            failed = [
                (row["seq"], repr(result)[:500])
                for row, result in zip(rows, results, strict=True)
                if isinstance(result, BaseException)
            ]
            if confirmed:
                await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", confirmed)
            if failed:
                await conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1", failed
                )
        EVENTS_PUBLISHED.labels(self._service).inc(len(confirmed))
        if any(isinstance(result, DeliveryError) for result in results):
            # The broker refused (nacked) publishes: after a node loss this can stick to the channel.
            log.warning("outbox_publishes_nacked", rows=len(failed))
            with contextlib.suppress(Exception):
                await renew_publishing_channel(self._broker)
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(rows)} outbox events were not confirmed: {failed[0][1]}")
        return len(confirmed)
