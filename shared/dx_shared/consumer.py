"""Consuming events: inbox deduplication in the effect's transaction, dead-lettering, bounded retry.

Every subscriber in every service goes through `consume`, so the rules live in one place:
- an event id already in the service's inbox has no second effect (redeliveries, duplicates);
- the inbox row, the handler's state change and any outbox rows commit together, then the message is
  acked — a consumer killed before its ack loses nothing, the redelivery is deduplicated;
- a message that can never succeed (not a CloudEvent, data not fitting its type, `PermanentFailure`,
  a value PostgreSQL cannot store)
  goes to the dead-letter queue at once with its reason, and the queue moves on;
- a failure that is not the message's own (the database or the broker unreachable, starting, shutting
  down, out of connections; a lock timeout, a deadlock, a serialization failure: `faults.py`) never
  counts toward the delivery limit: the message is held unacked, every consumer of the process pauses at
  the dependency's gate while one task probes it with jittered back-off, and once it answers the same
  message is retried in-process. Only when such a failure keeps recurring while the dependency answers
  at once is the message handed back to the queue;
- anything else is treated as the message's own transient failure and rejected with requeue; the quorum
  queue's delivery limit bounds the retries and then dead-letters it;
- an event whose CloudEvents `source` is not the producer named by its routing key (the broker's topic
  permissions make the routing key the authenticated producer) is dead-lettered at once, never applied;
- unknown event types, and known ones this service did not subscribe to, are acked and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from dx_shared.faults import (
    Dependency,
    after_dependency_failure,
    backoff_delay,
    loses_connections,
    unavailable_dependency,
)
from dx_shared.logging import get_logger
from dx_shared.metrics import DEPENDENCY_AVAILABLE, EVENTS_CONSUMED
from dx_shared.settings import Settings

log = get_logger(__name__)

# Applies one event in the caller's transaction. A subscription without the inbox deduplicates in its own
# record: its handler returns False for an event it had applied already.
Handler = Callable[[asyncpg.Connection, CloudEvent, Any], Awaitable[bool | None]]
# Applies the events of a batch in the caller's transaction: those not in the inbox, or, for a subscription
# without the inbox, all of them, returning the ids it applied (the others were duplicates).
BatchHandler = Callable[[asyncpg.Connection, Sequence["Fresh"]], Awaitable[set[str] | None]]


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
    # Set-based application of a whole batch; without it, `handler` is called per event in the batch's
    # transaction. Either way a failure of the batch falls back to one event per transaction.
    batch_handler: BatchHandler | None = None
    # False: the service's own record of the events it applied deduplicates them (one record per event
    # instead of two); its handlers then say which events were new.
    inbox: bool = True

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


class BatchMessage(IncomingMessage, Protocol):
    """A delivery of a batch: also acks every delivery of its channel up to itself in one frame."""

    async def ack_through(self) -> None: ...

    def scope(self) -> contextlib.AbstractContextManager[object]:
        """Makes the delivery's consumer span current (the trace the event's consequences continue)."""
        ...


Probe = Callable[[], Awaitable[None]]


class DependencyGate:
    """Where the consumers of one process wait while a dependency is down.

    The first consumer to find the dependency unreachable closes the gate; one task then probes it with
    jittered exponential back-off until it answers, and opens the gate. Consumers hold their unacked
    messages meanwhile, and new deliveries wait at the gate before they touch the dependency, so a whole
    outage costs no delivery attempt (the prefetch bounds how many messages are held).
    """

    def __init__(self, dependency: Dependency, probe: Probe, *, service: str, base: float, cap: float) -> None:
        self.dependency = dependency
        self._probe = probe
        self._service = service
        self._base = base
        self._cap = cap
        self._open = asyncio.Event()
        self._open.set()
        self._probing: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait_open(self) -> None:
        await self._open.wait()

    async def hold(self) -> bool:
        """After a failure: True if the dependency answers at once, else waits until it answers again."""
        if self._open.is_set():
            if await self._answers():
                return True
            self._close()
        await self._open.wait()
        return False

    def _close(self) -> None:
        if not self._open.is_set():
            return
        self._open.clear()
        DEPENDENCY_AVAILABLE.labels(self._service, self.dependency.value).set(0)
        log.warning("dependency_unavailable", dependency=self.dependency.value)
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._probe_until_answered(), name=f"probe-{self.dependency.value}")

    async def _answers(self) -> bool:
        try:
            await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True

    async def _probe_until_answered(self) -> None:
        attempt = 0
        started = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(backoff_delay(attempt, base=self._base, cap=self._cap))
            if await self._answers():
                break
            attempt += 1
        waited = asyncio.get_running_loop().time() - started
        log.info(
            "dependency_available", dependency=self.dependency.value, waited_s=round(waited, 2), probes=attempt + 1
        )
        DEPENDENCY_AVAILABLE.labels(self._service, self.dependency.value).set(1)
        self._open.set()

    async def close(self) -> None:
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing


@dataclass
class Gates:
    """One gate per dependency, shared by every subscriber of a service process."""

    database: DependencyGate
    broker: DependencyGate

    def of(self, dependency: Dependency) -> DependencyGate:
        return self.database if dependency is Dependency.DATABASE else self.broker

    async def close(self) -> None:
        await self.database.close()
        await self.broker.close()


def database_probe(database_url: str) -> Probe:
    """`SELECT 1` through a fresh connection: pooled connections may be stale after a restart."""

    async def probe() -> None:
        conn = await asyncpg.connect(database_url, timeout=2.0)
        try:
            await conn.fetchval("SELECT 1", timeout=2.0)
        finally:
            await conn.close(timeout=2.0)

    return probe


def broker_probe(broker: RabbitBroker) -> Probe:
    async def probe() -> None:
        if not await broker.ping(timeout=2.0):
            raise ConnectionError("the broker does not answer")

    return probe


def new_gates(settings: Settings, broker: RabbitBroker, service: str) -> Gates:
    base, cap = settings.consumer_backoff_base, settings.consumer_backoff_cap
    return Gates(
        database=DependencyGate(
            Dependency.DATABASE, database_probe(settings.database_url_of(service)), service=service, base=base, cap=cap
        ),
        broker=DependencyGate(Dependency.BROKER, broker_probe(broker), service=service, base=base, cap=cap),
    )


async def dead_letter(
    broker: RabbitBroker, settings: Settings, queue: str, message: IncomingMessage, reason: str
) -> None:
    """Copies the message to the queue's DLQ with the reason (confirmed) before the original is acked."""
    headers = dict(message.headers or {})
    headers[DEAD_LETTER_REASON_HEADER] = reason[:1000]
    headers["x-dx-original-queue"] = queue
    headers["x-dx-dead-lettered-at"] = datetime.now(UTC).isoformat()
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
    pool: asyncpg.Pool,
    subscription: Subscription,
    raw: bytes,
    routing_key: str | None = None,
    parsed: tuple[CloudEvent, EventPayload | None] | None = None,
) -> tuple[str, CloudEvent | None, str | None]:
    """Parses and applies one message; returns (outcome, event, reason). Raises on transient failure.

    `routing_key` is the key the message was published with (None only for events replayed from a
    store, which were checked when they arrived): an event whose source is not the producer it names
    is dead-lettered, never applied. `parsed`: the event and payload `raw` was parsed into already (a
    batch's event taking the one-event path), so it is not parsed again.
    """
    if parsed is not None:
        event, payload = parsed
    else:
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
                if subscription.inbox:
                    fresh = await conn.fetchval(
                        "INSERT INTO inbox (event_id, event_type) VALUES ($1, $2)"
                        " ON CONFLICT DO NOTHING RETURNING true",
                        event.id,
                        event.type,
                    )
                    if not fresh:
                        return "duplicate", event, None
                try:
                    if await subscription.handler(conn, event, payload) is False:
                        return "duplicate", event, None
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
    gates: Gates,
    strikes: int = 0,
    parsed: tuple[CloudEvent, EventPayload | None] | None = None,
) -> None:
    """Applies one message (`strikes`: failures it already met while the dependency answered at once;
    `parsed`: its event and payload when the caller has parsed its body already)."""
    applied = await _apply_holding_through_outages(
        pool, settings, service, queue, subscription, message, gates, strikes, parsed
    )
    if applied is None:
        return
    outcome, event, reason = applied
    event_type = event.type if event else "?"
    EVENTS_CONSUMED.labels(service, queue, event_type, outcome).inc()
    if outcome == "dead_lettered":
        await _dead_letter_holding(broker, settings, queue, message, reason, gates)
    else:
        log.debug("event_" + outcome, queue=queue, event_id=event.id if event else None)
    await _settle(message.ack(), queue, message)


async def _dead_letter_holding(
    broker: RabbitBroker, settings: Settings, queue: str, message: IncomingMessage, reason: str | None, gates: Gates
) -> None:
    """Copies the message to its DLQ, holding through broker outages; raises when it must stay unacked."""
    log.warning("event_dead_lettered", queue=queue, message_id=message.message_id, reason=(reason or "")[:300])
    strikes = 0
    while True:
        try:
            await dead_letter(broker, settings, queue, message, reason or "unprocessable")
            return
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            log.warning("dead_letter_held", queue=queue, message_id=message.message_id, error=type(exc).__name__)
            answered_at_once = await gates.broker.hold()
            verdict = after_dependency_failure(
                strikes=strikes, answered_at_once=answered_at_once, max_strikes=settings.consumer_max_strikes
            )
            strikes = verdict.strikes
            if not verdict.retry_in_process:
                raise  # left unacked: the broker redelivers it when the channel closes
            if answered_at_once:
                await asyncio.sleep(backoff_delay(strikes, base=settings.consumer_backoff_base, cap=1.0))


async def _apply_holding_through_outages(
    pool: asyncpg.Pool,
    settings: Settings,
    service: str,
    queue: str,
    subscription: Subscription,
    message: IncomingMessage,
    gates: Gates,
    strikes: int = 0,
    parsed: tuple[CloudEvent, EventPayload | None] | None = None,
) -> tuple[str, CloudEvent | None, str | None] | None:
    """Applies the message, holding it through dependency outages; None when it went back to the queue."""
    while True:
        await gates.database.wait_open()
        try:
            return await process(pool, subscription, message.body, message.routing_key or "", parsed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                EVENTS_CONSUMED.labels(service, queue, "?", "retried").inc()
                log.warning(
                    "event_retry",
                    queue=queue,
                    message_id=message.message_id,
                    error=type(exc).__name__,
                    message=str(exc)[:300],
                )
                await _settle(message.reject(requeue=True), queue, message)
                return None
            EVENTS_CONSUMED.labels(service, queue, "?", "held").inc()
            log.warning(
                "event_held",
                queue=queue,
                message_id=message.message_id,
                dependency=dependency.value,
                error=type(exc).__name__,
                message=str(exc)[:200],
            )
            if dependency is Dependency.DATABASE and loses_connections(exc):
                # Pooled connections did not survive the server: take fresh ones for the retry.
                await pool.expire_connections()
            answered_at_once = await gates.of(dependency).hold()
            verdict = after_dependency_failure(
                strikes=strikes, answered_at_once=answered_at_once, max_strikes=settings.consumer_max_strikes
            )
            strikes = verdict.strikes
            if not verdict.retry_in_process:
                log.warning("event_retry", queue=queue, message_id=message.message_id, strikes=strikes)
                await _settle(message.reject(requeue=True), queue, message)
                return None
            if answered_at_once:
                await asyncio.sleep(
                    backoff_delay(strikes, base=settings.consumer_backoff_base, cap=settings.consumer_backoff_cap)
                )


async def _settle(settling: Awaitable[None], queue: str, message: IncomingMessage) -> None:
    """Acks or rejects; when the channel is gone the broker redelivers the message (the inbox dedupes it)."""
    try:
        await settling
    except Exception as exc:
        if unavailable_dependency(exc) is not Dependency.BROKER:
            raise
        log.warning("event_settle_failed", queue=queue, message_id=message.message_id, error=type(exc).__name__)


# ---- batches ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fresh:
    """An event of a batch that was not in the inbox: the batch handler applies it."""

    event: CloudEvent
    payload: Any
    message: BatchMessage

    def scope(self) -> contextlib.AbstractContextManager[None]:
        """Binds the event's correlation id, its log fields and its consumer span while its effects are made."""
        return _event_scope(self.event, self.message)


class EventFailed(Exception):
    """Raised by a batch handler that knows which event of the batch failed (`cause` is the failure): that
    event alone is dead-lettered or retried, and the rest of the batch is applied again without it."""

    def __init__(self, item: Fresh, cause: BaseException) -> None:
        super().__init__(f"{item.event.id}: {type(cause).__name__}: {cause}")
        self.item = item
        self.cause = cause


@contextlib.contextmanager
def _event_scope(event: CloudEvent, message: BatchMessage) -> Iterator[None]:
    tokens = context.bind(event.correlationid or event.id, event.id)
    try:
        with (
            message.scope(),
            structlog.contextvars.bound_contextvars(event_id=event.id, event_type=event.type),
        ):
            yield
    finally:
        context.reset(tokens)


async def _apply_each(conn: asyncpg.Connection, subscription: Subscription, fresh: Sequence[Fresh]) -> set[str]:
    applied: set[str] = set()
    for item in fresh:
        with item.scope():
            try:
                if await subscription.handler(conn, item.event, item.payload) is not False:
                    applied.add(item.event.id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise EventFailed(item, exc) from exc
    return applied


async def apply_batch(pool: asyncpg.Pool, subscription: Subscription, candidates: Sequence[Fresh]) -> set[str]:
    """One transaction: one inbox insert for the batch, then the batch handler on the events it had not
    seen. Returns the ids applied (the others were duplicates); raises what the handler raised."""
    async with pool.acquire() as conn, conn.transaction():
        if subscription.inbox:
            rows = await conn.fetch(
                "INSERT INTO inbox (event_id, event_type) SELECT * FROM unnest($1::text[], $2::text[])"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                [item.event.id for item in candidates],
                [item.event.type for item in candidates],
            )
            applied = {row["event_id"] for row in rows}
            fresh = [item for item in candidates if item.event.id in applied]
        else:
            applied, fresh = {item.event.id for item in candidates}, list(candidates)
        if fresh:
            if subscription.batch_handler is not None:
                said = await subscription.batch_handler(conn, fresh)
            else:
                said = await _apply_each(conn, subscription, fresh)
            if said is not None:
                applied &= said
    return applied


def _permanent_reason(exc: BaseException) -> str | None:
    if isinstance(exc, PermanentFailure):
        return str(exc)
    if isinstance(exc, asyncpg.DataError):
        # PostgreSQL class 22: the event carries a value that can never be stored (e.g. NUL).
        return f"unstorable value: {type(exc).__name__}: {exc}"
    return None


async def consume_batch(
    *,
    pool: asyncpg.Pool,
    broker: RabbitBroker,
    settings: Settings,
    service: str,
    queue: str,
    subscription: Subscription,
    messages: Sequence[BatchMessage],
    gates: Gates,
) -> bool:
    """Applies the deliveries of one channel in one transaction and acks them with one multi-ack after the
    commit, with the outcomes `consume` gives one by one:
    - a message that is no event or comes from the wrong producer is dead-lettered before the transaction,
      one not for this subscription (or repeated within the batch) is acked and ignored;
    - when an event of the batch fails and the handler names it (`EventFailed`), that event alone is
      dead-lettered (a permanent failure) or rejected with requeue (a transient one, one delivery attempt as
      before), and the rest is applied again without it; a failure that names no event makes the batch go
      one event per transaction;
    - a dependency outage holds the whole batch at the gate, as it holds a single message.

    The caller must have settled every earlier delivery of the channel (the multi-ack covers them).
    Returns True when a delivery had to be left unacked (its dead-letter copy could not be made): the
    caller must then close the channel, so that the broker takes it back before any later multi-ack."""
    candidates: list[Fresh] = []
    seen: set[str] = set()
    settled: list[BatchMessage] = []  # settled before the batch's transaction, acked with the batch
    held: list[BatchMessage] = []  # must stay unacked (a dead-letter copy could not be made)
    alone: list[BatchMessage] = []  # settled on their own (a multi-ack must not name them: unknown tag)
    for message in messages:
        try:
            event = parse_event(message.body)
            payload = event.payload()
        except MalformedEvent as exc:
            await _dead_letter_and_count(broker, settings, service, queue, message, None, str(exc), gates, held)
            settled.append(message)
            continue
        mismatch = producer_mismatch(event, message.routing_key or "")
        if mismatch is not None:
            reason = f"producer mismatch: {mismatch}"
            await _dead_letter_and_count(broker, settings, service, queue, message, event, reason, gates, held)
            settled.append(message)
            continue
        if payload is None or not subscription.accepts(payload) or event.id in seen:
            EVENTS_CONSUMED.labels(service, queue, event.type, "duplicate" if event.id in seen else "ignored").inc()
            settled.append(message)
            continue
        seen.add(event.id)
        candidates.append(Fresh(event, payload, message))

    async def alone_path(item: Fresh, strikes: int) -> None:
        """One delivery of the batch on the one-event path, already parsed (`strikes`: failures met)."""
        with item.message.scope():
            await consume(
                pool=pool, broker=broker, settings=settings, service=service, queue=queue,
                subscription=subscription, message=item.message, gates=gates, strikes=strikes,
                parsed=(item.event, item.payload),
            )

    applied: set[str] | object = set()
    while len(candidates) > 1:
        applied = await _apply_batch_holding_through_outages(
            pool, settings, service, queue, subscription, candidates, gates
        )
        if isinstance(applied, _Isolate):
            # Settled on its own before the rest, so the batch's multi-ack never covers it unsettled.
            isolated = applied.item
            candidates = [item for item in candidates if item is not isolated]
            alone.append(isolated.message)
            await alone_path(isolated, strikes=1)
            applied = set()
            continue
        if not isinstance(applied, EventFailed):
            break
        culprit = applied.item
        candidates = [item for item in candidates if item is not culprit]
        alone.append(culprit.message)
        refusal = _permanent_reason(applied.cause)
        with culprit.message.scope():
            if refusal is not None:
                await _dead_letter_and_count(
                    broker, settings, service, queue, culprit.message, culprit.event, refusal, gates, held
                )
                if all(culprit.message is not message for message in held):
                    await _settle(culprit.message.ack(), queue, culprit.message)
            else:
                _count_retry(service, queue, culprit.message, applied.cause)
                await _settle(culprit.message.reject(requeue=True), queue, culprit.message)
        applied = set()
    if len(candidates) == 1:
        # Alone, the event takes the one-event path (a transient failure is met once per delivery).
        applied = _ONE_BY_ONE

    if isinstance(applied, set):
        for item in candidates:
            outcome = "processed" if item.event.id in applied else "duplicate"
            EVENTS_CONSUMED.labels(service, queue, item.event.type, outcome).inc()
        if held:
            await _ack_each(queue, [m for m in [*settled, *(i.message for i in candidates)] if _not_in(m, held)])
            return True
        # Every delivery of the batch is settled by this ack or was on its own, and every earlier delivery
        # of the channel was before the batch: one multi-ack through the last one still outstanding.
        outstanding = [message for message in messages if _not_in(message, alone)]
        if outstanding:
            await _settle(outstanding[-1].ack_through(), queue, outstanding[-1])
        return False
    # The candidates are settled one by one below: ack now only what is settled already.
    await _ack_each(queue, [m for m in settled if _not_in(m, held)])
    if applied is _ONE_BY_ONE:
        if len(candidates) > 1:
            log.info("batch_applied_one_by_one", queue=queue, size=len(candidates))
        for item in candidates:
            await alone_path(item, strikes=0)
    return bool(held)


def _not_in(message: BatchMessage, held: Sequence[BatchMessage]) -> bool:
    return all(message is not other for other in held)


def _count_retry(service: str, queue: str, message: IncomingMessage, exc: BaseException) -> None:
    EVENTS_CONSUMED.labels(service, queue, "?", "retried").inc()
    log.warning(
        "event_retry", queue=queue, message_id=message.message_id, error=type(exc).__name__, message=str(exc)[:300]
    )


async def _dead_letter_and_count(
    broker: RabbitBroker,
    settings: Settings,
    service: str,
    queue: str,
    message: BatchMessage,
    event: CloudEvent | None,
    reason: str,
    gates: Gates,
    held: list[BatchMessage],
) -> None:
    EVENTS_CONSUMED.labels(service, queue, event.type if event else "?", "dead_lettered").inc()
    try:
        await _dead_letter_holding(broker, settings, queue, message, reason, gates)
    except Exception as exc:
        log.warning("dead_letter_failed", queue=queue, message_id=message.message_id, error=type(exc).__name__)
        held.append(message)


async def _ack_each(queue: str, messages: Sequence[BatchMessage]) -> None:
    for message in messages:
        await _settle(message.ack(), queue, message)


_ONE_BY_ONE = object()


@dataclass(frozen=True)
class _Isolate:
    """An event of the batch met a dependency's refusal while the dependency answers: it goes on alone."""

    item: Fresh


async def _apply_batch_holding_through_outages(
    pool: asyncpg.Pool,
    settings: Settings,
    service: str,
    queue: str,
    subscription: Subscription,
    candidates: Sequence[Fresh],
    gates: Gates,
) -> set[str] | EventFailed | _Isolate | object:
    """The ids applied; the `EventFailed` of an event that failed on its own; `_ONE_BY_ONE` when the batch
    must be applied one event at a time (a failure that names no event, or a dependency's refusal while
    it answers at once, which the one-event path retries boundedly per event)."""
    while True:
        await gates.database.wait_open()
        try:
            return await apply_batch(pool, subscription, candidates)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                log.info("batch_failed", queue=queue, size=len(candidates), error=type(exc).__name__)
                return exc if isinstance(exc, EventFailed) else _ONE_BY_ONE
            EVENTS_CONSUMED.labels(service, queue, "?", "held").inc(len(candidates))
            log.warning(
                "batch_held",
                queue=queue,
                size=len(candidates),
                dependency=dependency.value,
                error=type(exc).__name__,
                message=str(exc)[:200],
            )
            if dependency is Dependency.DATABASE and loses_connections(exc):
                await pool.expire_connections()
            answered_at_once = await gates.of(dependency).hold()
            if answered_at_once:
                # The dependency is there (a deadlock, a serialization failure, a lock timeout): perhaps the
                # event's own doing, so it goes on alone, this having been its first strike; without a
                # named event, each event meets it alone with its own bounded retries.
                return _Isolate(exc.item) if isinstance(exc, EventFailed) else _ONE_BY_ONE
            # It was down and answers again: the same batch is applied again, having cost no delivery attempt.
