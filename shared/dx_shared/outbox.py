"""Transactional outbox: an event is committed with the state change that caused it, then relayed.

`enqueue` runs inside the caller's transaction. Two paths publish a committed row:

- **At once** (`ImmediatePublisher`): `enqueue` keeps the event's bytes in memory, and its NOTIFY (which
  PostgreSQL delivers only when, and only if, the transaction commits) names the row and the publisher
  that holds it. That publisher, on its own broker connection and channel (not behind the consumers),
  publishes at once with pipelined publisher confirms (many in flight) and marks the confirmed rows
  published, many rows per statement. No read of the row is needed.
- **The loop** (`OutboxRelay`), the fallback and the source of truth: it takes unpublished rows with
  `FOR UPDATE SKIP LOCKED` (so replicas never publish the same row at the same time), publishes each as
  a persistent message with publisher confirms, and marks them published in the same transaction. It
  publishes whatever the immediate path did not: a failed immediate publish (handed back at once), rows
  of a process that died before publishing (after a short grace, so it does not race a live one),
  rows committed while no listener or broker channel was up.

A crash between a confirm and the mark republishes the row: consumers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from dx_shared.bus import ClusterConnection, publish_event_bytes, renew_publishing_channel
from dx_shared.envelope import CONTENT_TYPE, CloudEvent
from dx_shared.faults import backoff_delay
from dx_shared.logging import get_logger
from dx_shared.metrics import EVENTS_PUBLISHED, OUTBOX_DEAD, OUTBOX_FAILURES, OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from dx_shared.settings import Settings
from dx_shared.tracing import TRACEPARENT, current_traceparent, outbox_parent, spans_recorded

log = get_logger(__name__)

_BATCH_WINDOW = 0.01
_PURGE_EVERY = 3600.0
_LISTEN_CHECK_EVERY = 5.0
_LISTEN_RETRY_BASE = 0.1
_LISTEN_RETRY_CAP = 1.0
# A poll leaves rows this young to the process that committed them and publishes them at once; the
# loop takes them only when told (a handed-back row, an unowned NOTIFY) or once they are older.
_IMMEDIATE_GRACE = 2.0
# Rows kept in memory for the immediate path whose commit never came (rolled back) are forgotten.
_FORGET_AFTER = 60.0
_MAX_IN_FLIGHT = 5000
# NOTIFY payloads are limited to 8000 bytes: bigger batches go through the loop.
_MAX_NOTIFIED_ROWS = 400


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


@dataclass(frozen=True, slots=True)
class _Held:
    """An enqueued event kept in memory until its transaction commits and it is published."""

    event_id: str
    routing_key: str
    body: bytes
    correlation_id: str | None
    traceparent: str | None
    since: float


# The immediate publishers running in this process, by `<database>/<schema>` of the outbox they publish.
_immediate: dict[str, ImmediatePublisher] = {}


def _owners() -> tuple[list[str], list[str]]:
    ready = [(outbox, publisher.token) for outbox, publisher in _immediate.items() if publisher.ready]
    return [outbox for outbox, _ in ready], [token for _, token in ready]


# The NOTIFY payload: `<token>:<seq>,<seq>…` when a publisher of this process holds the rows, else ''
# (any relay's loop then takes them, as before there was an immediate path).
_NOTIFY_PAYLOAD = (
    "COALESCE((SELECT owner.token || ':' FROM unnest($6::text[], $7::text[]) AS owner(outbox, token)"
    " WHERE owner.outbox = current_database() || '/' || current_schema()), '')"
)


async def enqueue(conn: asyncpg.Connection, event: CloudEvent) -> None:
    """Adds the event to the outbox of the schema on the connection's search_path (the service's own)."""
    traceparent = current_traceparent()
    outboxes, tokens = _owners()
    body = event.to_bytes()
    rows = await conn.fetch(
        "WITH added AS (INSERT INTO outbox (event_id, routing_key, body, correlation_id, traceparent)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING seq)"
        f" SELECT seq, current_database() || '/' || current_schema() AS outbox, pg_notify('dx_outbox_' || current_schema(),"
        f" CASE WHEN {_NOTIFY_PAYLOAD} = '' THEN '' ELSE {_NOTIFY_PAYLOAD} || seq END) FROM added",
        event.id,
        _routing_key_of(event),
        body,
        event.correlationid,
        traceparent,
        outboxes,
        tokens,
    )
    _hold(rows, [(row["seq"], event, body) for row in rows], traceparent, outboxes)


async def enqueue_many(conn: asyncpg.Connection, events: list[CloudEvent]) -> None:
    if not events:
        return
    traceparent = current_traceparent()
    outboxes, tokens = _owners() if len(events) <= _MAX_NOTIFIED_ROWS else ([], [])
    bodies = [event.to_bytes() for event in events]
    rows = await conn.fetch(
        "WITH added AS (INSERT INTO outbox (event_id, routing_key, body, correlation_id, traceparent)"
        " SELECT event_id, routing_key, body, correlation_id, $5"
        " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) AS e(event_id, routing_key, body, correlation_id)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING seq, event_id),"
        f" told AS (SELECT pg_notify('dx_outbox_' || current_schema(), CASE WHEN {_NOTIFY_PAYLOAD} = '' THEN ''"
        f" ELSE {_NOTIFY_PAYLOAD} || string_agg(seq::text, ',') END) FROM added HAVING count(*) > 0)"
        " SELECT seq, event_id, current_database() || '/' || current_schema() AS outbox, (SELECT count(*) FROM told)"
        " AS told FROM added",
        [event.id for event in events],
        [_routing_key_of(event) for event in events],
        bodies,
        [event.correlationid for event in events],
        traceparent,
        outboxes,
        tokens,
    )
    by_id = {event.id: (event, body) for event, body in zip(events, bodies, strict=True)}
    _hold(rows, [(row["seq"], *by_id[row["event_id"]]) for row in rows], traceparent, outboxes)


def _notify_payload(outboxes: int, tokens: int) -> str:
    """`_NOTIFY_PAYLOAD` with the owners' parameters numbered `outboxes` and `tokens`."""
    return _NOTIFY_PAYLOAD.replace("$6", "{outboxes}").replace("$7", "{tokens}").format(
        outboxes=f"${outboxes}", tokens=f"${tokens}"
    )


@dataclass(frozen=True)
class OutboxInsert:
    """An event to add to the outbox inside the caller's own statement (one round trip fewer than
    `enqueue`), on a condition known only to that statement. `cte` names it; `values` are its parameters,
    numbered from `first`; the statement must select `outbox_seq` and `outbox_name` (`selected`), which
    `held` then hands to this process's immediate publisher, exactly as `enqueue` does."""

    event: CloudEvent
    body: bytes
    traceparent: str | None
    outboxes: list[str]
    tokens: list[str]
    first: int

    @classmethod
    def of(cls, event: CloudEvent, *, first: int) -> OutboxInsert:
        outboxes, tokens = _owners()
        return cls(event, event.to_bytes(), current_traceparent(), outboxes, tokens, first)

    def cte(self, when: str) -> str:
        """`outboxed AS (…)`: inserts the row when `when` (an SQL condition over the other CTEs) holds,
        and sends the same NOTIFY as `enqueue` (delivered only if the transaction commits)."""
        n = self.first
        payload = _notify_payload(n + 5, n + 6)
        return (
            "outboxed AS (INSERT INTO outbox (event_id, routing_key, body, correlation_id, traceparent)"
            f" SELECT ${n}, ${n + 1}, ${n + 2}::bytea, ${n + 3}, ${n + 4} WHERE {when}"
            " ON CONFLICT (event_id) DO NOTHING RETURNING seq),"
            " outbox_told AS (SELECT seq, current_database() || '/' || current_schema() AS outbox,"
            f" pg_notify('dx_outbox_' || current_schema(), CASE WHEN {payload} = '' THEN ''"
            f" ELSE {payload} || seq END) AS told FROM outboxed)"
        )

    selected = (
        "(SELECT seq FROM outbox_told) AS outbox_seq, (SELECT outbox FROM outbox_told) AS outbox_name"
    )

    @property
    def values(self) -> tuple[object, ...]:
        event = self.event
        return (
            event.id,
            _routing_key_of(event),
            self.body,
            event.correlationid,
            self.traceparent,
            self.outboxes,
            self.tokens,
        )

    def held(self, seq: int | None, outbox: str | None) -> None:
        """After the statement: gives the row (if it was added) to this process's publisher."""
        if seq is None or outbox is None:
            return
        _hold([{"seq": seq, "outbox": outbox}], [(seq, self.event, self.body)], self.traceparent, self.outboxes)


def _hold(
    rows: list[asyncpg.Record] | list[dict[str, object]], added: list[tuple[int, CloudEvent, bytes]], traceparent: str | None, named: list[str]
) -> None:
    """Gives the rows just added to this process's publisher of their outbox, if the NOTIFY named it."""
    if not rows or rows[0]["outbox"] not in named:
        return
    publisher = _immediate.get(rows[0]["outbox"])
    if publisher is None:
        return
    now = time.monotonic()
    for seq, event, body in added:
        publisher.hold(seq, _Held(event.id, _routing_key_of(event), body, event.correlationid, traceparent, now))


class _Unpublishable(ValueError):
    """A row the client library would refuse to encode; the loop counts its attempts (outbox_dead)."""


def _check_short_strings(held: _Held, service: str) -> None:
    # AMQP short strings hold 255 bytes; a client that fails to encode one mid-publish has already taken
    # a confirm number, and every later confirm on the channel would be matched to the wrong message.
    for value in (held.event_id, held.correlation_id, f"dx-{service}"):
        if value is not None and len(value.encode()) > 255:
            raise _Unpublishable("string exceeds maximum length of 255 bytes")


class ImmediatePublisher:
    """Publishes an outbox row as soon as its transaction commits, on a broker channel of its own.

    The rows' bytes come from `enqueue` (same process); the commit is learnt from the NOTIFY that
    `enqueue` sends, which carries this publisher's token and the rows' `seq`. Publishes are pipelined:
    each waits for its own confirm, many at a time. Confirmed rows are marked published together, by one
    statement per batch. A publish that fails is handed back to the relay's loop at once.
    """

    def __init__(self, *, pool: asyncpg.Pool, settings: Settings, service: str, hand_back: Callable[[], None]) -> None:
        self._pool = pool
        self._settings = settings
        self._service = service
        self._hand_back = hand_back
        self.token = uuid.uuid4().hex[:16]
        database_url = getattr(settings, f"{service}_database_url", None) or settings.database_url
        database = urlsplit(database_url).path.lstrip("/") or "postgres"
        self._outbox = f"{database}/{service}"
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._held: dict[int, _Held] = {}
        self._committed_early: dict[int, float] = {}
        self._in_flight: set[int] = set()
        self._confirmed: list[int] = []
        self._mark_wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._marking: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._tracer = trace.get_tracer(__name__)
        self.published = 0

    @property
    def ready(self) -> bool:
        channel, connection = self._channel, self._connection
        return (
            channel is not None
            and connection is not None
            and not channel.is_closed
            and not connection.is_closed
            and len(self._in_flight) < _MAX_IN_FLIGHT
        )

    def holds(self) -> list[int]:
        """Rows this publisher owns (committed or not): the loop leaves them alone."""
        return [*self._held, *self._in_flight]

    async def start(self) -> None:
        _immediate.setdefault(self._outbox, self)
        self._marking = asyncio.create_task(self._mark_published(), name=f"outbox-mark-{self._service}")
        self._connecting = asyncio.create_task(self._connect(), name=f"outbox-connect-{self._service}")

    async def stop(self) -> None:
        if _immediate.get(self._outbox) is self:
            del _immediate[self._outbox]
        for task in (self._connecting, self._renewing, *self._tasks):
            if task is not None:
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush_marks()
        if self._marking is not None:
            self._marking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._marking
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._channel = self._connection = self._exchange = None

    async def _connect(self) -> None:
        urls = self._settings.amqp_urls_of(self._service)
        failures = 0
        while self._connection is None:
            try:
                connection = await aio_pika.connect_robust(
                    urls[0],
                    connection_class=functools.partial(ClusterConnection, cluster=urls),
                    reconnect_interval=self._settings.broker_reconnect_interval,
                    client_properties={"connection_name": f"dx-{self._service}-outbox"},
                    timeout=10.0,
                )
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("outbox_immediate_connect_failed", error=type(exc).__name__)
                await asyncio.sleep(backoff_delay(failures, base=0.1, cap=self._settings.outbox_backoff_cap))
                continue
            channel = await connection.channel(publisher_confirms=True)
            self._exchange = await channel.get_exchange(self._settings.exchange, ensure=False)
            self._connection, self._channel = connection, channel

    def forget_held(self) -> None:
        self._held.clear()
        self._committed_early.clear()

    def hold(self, seq: int, held: _Held) -> None:
        if self._committed_early.pop(seq, None) is not None:
            self._start_publish(seq, held)
            return
        self._held[seq] = held

    def on_committed(self, seqs: list[int]) -> None:
        now = time.monotonic()
        for seq in seqs:
            held = self._held.pop(seq, None)
            if held is None:
                # The commit of an autocommitted statement can be heard before `enqueue` has its result.
                self._committed_early[seq] = now
            else:
                self._start_publish(seq, held)
        self._forget_stale(now)

    def _forget_stale(self, now: float) -> None:
        stale = [seq for seq, held in self._held.items() if now - held.since > _FORGET_AFTER]
        for seq in stale:
            del self._held[seq]
        early = [seq for seq, since in self._committed_early.items() if now - since > _FORGET_AFTER]
        for seq in early:
            del self._committed_early[seq]

    def _start_publish(self, seq: int, held: _Held) -> None:
        self._in_flight.add(seq)
        task = asyncio.create_task(self._publish(seq, held))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, seq: int, held: _Held) -> None:
        exchange, channel = self._exchange, self._channel
        try:
            if exchange is None or channel is None or not self.ready:
                raise ConnectionError("the outbox channel is not open")
            _check_short_strings(held, self._service)
            if not spans_recorded():
                # No tracer provider: the producer span would be the stored context itself, so the stored
                # `traceparent` is what it would carry on; made and injected per row it only cost CPU.
                await self._send(exchange, channel, held, {TRACEPARENT: held.traceparent} if held.traceparent else {})
            else:
                with (
                    outbox_parent(held.traceparent),
                    self._tracer.start_as_current_span(
                        f"{self._settings.exchange}.{held.routing_key} publish",
                        kind=SpanKind.PRODUCER,
                        attributes={
                            "messaging.system": "rabbitmq",
                            "messaging.destination.name": self._settings.exchange,
                            "messaging.rabbitmq.destination.routing_key": held.routing_key,
                            "messaging.message.conversation_id": held.correlation_id or held.event_id,
                        },
                    ),
                ):
                    headers: dict[str, str] = {}
                    propagate.inject(headers)
                    await self._send(exchange, channel, held, headers)
        except asyncio.CancelledError:
            self._in_flight.discard(seq)
            raise
        except Exception as exc:
            self._in_flight.discard(seq)
            log.warning("outbox_immediate_publish_failed", error=type(exc).__name__, event_id=held.event_id)
            self._hand_back()
            if not isinstance(exc, _Unpublishable):
                self._renew_channel()
            return
        self._confirmed.append(seq)
        self._mark_wake.set()

    async def _send(
        self, exchange: AbstractExchange, channel: AbstractChannel, held: _Held, headers: dict[str, str]
    ) -> None:
        message = aio_pika.Message(
            held.body,
            headers=dict(headers),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=held.event_id,
            correlation_id=held.correlation_id or held.event_id,
            app_id=f"dx-{self._service}",
        )
        # Not `exchange.publish`: it holds the channel's lock until the client's writer task has flushed
        # the frames, so publishes queue one behind the other, a few event-loop turns each — under HTTP
        # load on the same loop that was a few dozen a second, and committed events waited for the load to
        # stop. Without `wait` the lock covers only numbering and queueing the frames (the confirm order
        # stays the frame order); the confirm is still awaited per row.
        underlay = await channel.get_underlay_channel()
        if isinstance(underlay, aiormq.Channel):
            await underlay.basic_publish(
                message.body,
                exchange=exchange.name,
                routing_key=held.routing_key,
                properties=message.properties,
                mandatory=False,
                timeout=30.0,
                wait=False,
            )
        else:
            await exchange.publish(message, routing_key=held.routing_key, mandatory=False, timeout=30.0)

    def _renew_channel(self) -> None:
        # A nack may be the stuck-leader case of bus.renew_publishing_channel; any other failure may leave
        # the client's confirm numbering out of step with the broker's. Either way: a new channel.
        if self._renewing is not None and not self._renewing.done():
            return
        self._renewing = asyncio.create_task(self._reopen_channel())

    async def _reopen_channel(self) -> None:
        channel = self._channel
        if channel is None:
            return
        with contextlib.suppress(Exception):
            if not channel.is_closed:
                await asyncio.wait_for(channel.close(), timeout=5.0)
            await asyncio.wait_for(channel.reopen(), timeout=10.0)

    async def _mark_published(self) -> None:
        failures = 0
        while True:
            await self._mark_wake.wait()
            self._mark_wake.clear()
            try:
                await self._flush_marks()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("outbox_mark_failed", error=type(exc).__name__)
                self._mark_wake.set()
                await asyncio.sleep(backoff_delay(failures, base=0.1, cap=self._settings.outbox_backoff_cap))

    async def _flush_marks(self) -> None:
        while self._confirmed:
            seqs, self._confirmed = self._confirmed, []
            try:
                await self._pool.execute(
                    "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[]) AND published_at IS NULL",
                    seqs,
                )
            except BaseException:
                self._confirmed[:0] = seqs
                raise
            self._in_flight.difference_update(seqs)
            self.published += len(seqs)
            EVENTS_PUBLISHED.labels(self._service).inc(len(seqs))


class OutboxRelay:
    """Publishes committed outbox rows with confirms; woken by NOTIFY, polling as a fallback.

    With `outbox_publish_immediately` it runs an `ImmediatePublisher` and is that path's fallback: the
    loop leaves the rows the publisher holds alone, and a poll leaves rows younger than a short grace
    to the process that committed them.

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
        # Set when the next pass must take every unpublished row, however young.
        self._urgent = True
        self.loop_published = 0
        self.immediate: ImmediatePublisher | None = None
        if settings.outbox_publish_immediately:
            self.immediate = ImmediatePublisher(pool=pool, settings=settings, service=service, hand_back=self.wake_now)

    async def start(self) -> None:
        if self.immediate is not None:
            await self.immediate.start()
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
        if self.immediate is not None:
            await self.immediate.stop()

    def wake_now(self) -> None:
        """Makes the loop take every unpublished row, at once."""
        self._urgent = True
        self._wake.set()

    def _on_notify(self, _conn: object, _pid: object, _channel: object, payload: object) -> None:
        owner, _, seqs = str(payload or "").partition(":")
        if not owner:
            self.wake_now()
            return
        immediate = self.immediate
        if immediate is not None and owner == immediate.token:
            immediate.on_committed([int(seq) for seq in seqs.split(",") if seq])
        # Otherwise another process's publisher has the rows; the poll is the fallback if it dies.

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
        if self.immediate is not None:
            # Commits of held rows may have been announced while nobody listened: the loop takes them.
            self.immediate.forget_held()
        # Rows committed while nobody listened would otherwise wait for the next poll.
        self.wake_now()

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
            # Cleared before the pass, not after: a NOTIFY heard during the pass must start the next one.
            self._wake.clear()
            min_age = 0.0 if self._urgent or self.immediate is None else _IMMEDIATE_GRACE
            self._urgent = False
            try:
                while await self.publish_batch(min_age=min_age) > 0:
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
                self._urgent = True
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

    async def publish_batch(self, *, min_age: float = 0.0) -> int:
        """Publishes up to one batch of rows at least `min_age` seconds old that the immediate path does
        not hold; returns how many rows were confirmed and marked."""
        held = self.immediate.holds() if self.immediate is not None else []
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, event_id, routing_key, body, correlation_id, attempts, traceparent FROM outbox"
                " WHERE published_at IS NULL AND seq <> ALL($2::bigint[])"
                " AND created_at <= now() - make_interval(secs => $3)"
                " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._settings.outbox_batch_size,
                held,
                min_age,
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
        self.loop_published += len(confirmed)
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
