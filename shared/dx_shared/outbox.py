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

import asyncpg
from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker

from dx_shared.bus import publish_event_bytes, renew_publishing_channel
from dx_shared.envelope import CloudEvent
from dx_shared.faults import backoff_delay
from dx_shared.logging import get_logger
from dx_shared.metrics import EVENTS_PUBLISHED, OUTBOX_DEAD, OUTBOX_FAILURES, OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from dx_shared.settings import Settings
from dx_shared.tracing import current_traceparent, outbox_parent

log = get_logger(__name__)

_BATCH_WINDOW = 0.01
_PURGE_EVERY = 3600.0
_LISTEN_CHECK_EVERY = 5.0
_LISTEN_RETRY_BASE = 0.1
_LISTEN_RETRY_CAP = 1.0


def _routing_key_of(event: CloudEvent) -> str:
    # jp.aomori.dx.<EventName>.v1 from /dx/<producer>  →  <producer>.<EventName>.v1
    producer = event.source.rsplit("/", 1)[-1]
    name_and_version = event.type.removeprefix("jp.aomori.dx.")
    return f"{producer}.{name_and_version}"


def notify_channel(schema: str) -> str:
    return f"dx_outbox_{schema}"


def listener_application_name(service: str) -> str:
    """How the relay's LISTEN session shows in pg_stat_activity."""
    return f"dx-{service}-outbox-listener"


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
    """Publishes committed outbox rows with confirms; woken by NOTIFY, polling as a fallback.

    The LISTEN connection is its own and is taken again whenever it is lost (a database restart), so
    NOTIFY keeps waking the relay. After a failure the relay pauses at most `outbox_backoff_cap`
    seconds, so publishing resumes within about a second of the broker answering again. A row that the
    broker keeps refusing while it answers (e.g. a header it cannot carry) moves to `outbox_dead` with
    its error after `outbox_max_attempts` tries, and the relay goes on with the rest.
    """

    def __init__(self, *, pool: asyncpg.Pool, broker: RabbitBroker, settings: Settings, service: str) -> None:
        self._pool = pool
        self._broker = broker
        self._settings = settings
        self._service = service
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self.listener: asyncpg.Connection | None = None
        self.listens = asyncio.Event()
        self._listener_lost = asyncio.Event()

    async def start(self) -> None:
        await self._listen()
        self._listening = asyncio.create_task(self._keep_listening(), name=f"outbox-listen-{self._service}")
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self) -> None:
        for task in (self._task, self._listening):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._drop_listener()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_listener_lost(self, *_: object) -> None:
        self._listener_lost.set()

    async def _listen(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._settings.database_url_of(self._service),
            timeout=5.0,
            server_settings={"application_name": listener_application_name(self._service)},
        )
        try:
            await conn.add_listener(notify_channel(self._service), self._on_notify)
            conn.add_termination_listener(self._on_listener_lost)
        except BaseException:
            await conn.close(timeout=2.0)
            raise
        self.listener = conn
        self._listener_lost.clear()
        self.listens.set()
        # Rows committed while nobody listened would otherwise wait for the next poll.
        self._wake.set()

    async def _drop_listener(self) -> None:
        self.listens.clear()
        conn, self.listener = self.listener, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)

    async def _keep_listening(self) -> None:
        failures = 0
        while True:
            conn = self.listener
            if conn is not None and not conn.is_closed():
                try:
                    await conn.fetchval("SELECT 1", timeout=2.0)
                    # A closed connection is noticed at once; a silent network loss by the periodic check.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._listener_lost.wait(), timeout=_LISTEN_CHECK_EVERY)
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox_listener_lost", error=type(exc).__name__)
            await self._drop_listener()
            try:
                await self._listen()
                log.info("outbox_listening_again", after_failures=failures)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("outbox_listen_failed", error=type(exc).__name__)
                await asyncio.sleep(backoff_delay(failures, base=_LISTEN_RETRY_BASE, cap=_LISTEN_RETRY_CAP))

    async def purge_published(self) -> int:
        """Deletes rows published longer ago than the retention; unpublished rows are never touched."""
        status = await self._pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._settings.outbox_retention_days * 86400,
        )
        return int(status.split()[-1])

    async def _run(self) -> None:
        failures = 0
        next_purge = 0.0
        while True:
            wait = self._settings.outbox_poll_interval
            try:
                while await self.publish_batch() > 0:
                    pass
                failures = 0
                if time.monotonic() >= next_purge:
                    purged = await self.purge_published()
                    if purged:
                        log.info("outbox_purged", rows=purged)
                    next_purge = time.monotonic() + _PURGE_EVERY
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                OUTBOX_FAILURES.labels(self._service).inc()
                failures += 1
                log.warning("outbox_publish_failed", error=type(exc).__name__, message=str(exc)[:200])
                wait = backoff_delay(failures, base=0.1, cap=self._settings.outbox_backoff_cap)
            self._wake.clear()
            # Polls even while LISTEN is lost; a NOTIFY or a reconnection of the listener wakes it earlier.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
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
                "SELECT seq, event_id, routing_key, body, correlation_id, attempts, traceparent FROM outbox"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._settings.outbox_batch_size,
            )
            if not rows:
                OUTBOX_PENDING.labels(self._service).set(0)
                OUTBOX_OLDEST_AGE.labels(self._service).set(0)
                return 0
            results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            failed = [row for row, result in zip(rows, results, strict=True) if isinstance(result, BaseException)]
            errors = {row["seq"]: result for row, result in zip(rows, results, strict=True) if result is not None}
            if failed and await self._broker_answers():
                # Each failed row alone: one row the broker refuses must not count against its neighbours.
                for row in failed:
                    try:
                        await self._publish(row)
                        errors.pop(row["seq"], None)
                    except Exception as exc:
                        errors[row["seq"]] = exc
                        await self._count_failure(conn, row, exc)
            confirmed = [row["seq"] for row in rows if row["seq"] not in errors]
            if confirmed:
                await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", confirmed)
        EVENTS_PUBLISHED.labels(self._service).inc(len(confirmed))
        if any(isinstance(result, DeliveryError) for result in results):
            # The broker refused (nacked) publishes: after a node loss this can stick to the channel.
            log.warning("outbox_publishes_nacked", rows=sum(isinstance(r, DeliveryError) for r in results))
            with contextlib.suppress(Exception):
                await renew_publishing_channel(self._broker)
        if errors:
            first = next(iter(errors.values()))
            raise RuntimeError(f"{len(errors)} of {len(rows)} outbox events were not confirmed: {first!r}"[:600])
        return len(confirmed)

    async def _broker_answers(self) -> bool:
        try:
            return bool(await self._broker.ping(timeout=1.0))
        except Exception:
            return False

    async def _count_failure(self, conn: asyncpg.Connection, row: asyncpg.Record, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if row["attempts"] + 1 < self._settings.outbox_max_attempts:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1", row["seq"], error
            )
            return
        await conn.execute(
            "WITH moved AS (DELETE FROM outbox WHERE seq = $1 RETURNING *)"
            " INSERT INTO outbox_dead (seq, event_id, routing_key, body, correlation_id, created_at, attempts, last_error)"
            " SELECT seq, event_id, routing_key, body, correlation_id, created_at, attempts + 1, $2 FROM moved"
            " ON CONFLICT (event_id) DO NOTHING",
            row["seq"],
            error,
        )
        OUTBOX_DEAD.labels(self._service).inc()
        log.error(
            "outbox_event_dead",
            event_id=row["event_id"],
            routing_key=row["routing_key"],
            attempts=row["attempts"] + 1,
            error=error[:200],
        )


async def oldest_unpublished_age(conn: asyncpg.Connection | asyncpg.Pool) -> float:
    """Seconds since the oldest outbox row still waiting to be published was committed (0 when none)."""
    age = await conn.fetchval(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox WHERE published_at IS NULL",
        timeout=2.0,
    )
    return float(age or 0.0)
