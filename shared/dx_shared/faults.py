"""Whose fault is a failure: the message's own, or a dependency's (the database or the broker)?

A dependency that is unreachable, starting up, shutting down, out of connections, or that refused a
transaction for reasons of concurrency (a lock timeout, a serialization failure, a deadlock) says nothing
about the message being handled: retrying later will succeed. Such a failure must never count toward a
queue's delivery limit, or an outage dead-letters valid events (STACK-NOTES.md "Transient failures and
the delivery limit"). Everything here is pure: it looks at exception types, and computes delays.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from enum import StrEnum

import aiormq.exceptions
import asyncpg


class Dependency(StrEnum):
    DATABASE = "database"
    BROKER = "broker"


# PostgreSQL classes and asyncpg client errors that mean "the database is not answering right now".
_DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,  # 57P03 starting up / shutting down / recovery
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.InsufficientResourcesError,  # class 53, TooManyConnectionsError
    asyncpg.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.LockNotAvailableError,  # 55P03 lock timeout
    asyncpg.QueryCanceledError,  # 57014 statement timeout
    asyncpg.InterfaceError,  # closed connection, pool closing
    asyncpg.InternalClientError,  # broken protocol state after a reset
    OSError,  # ConnectionRefusedError, ConnectionResetError, a resolver failure
    TimeoutError,  # a connect or a pool acquire that timed out
    asyncio.TimeoutError,
)

# A value the database refuses (class 22 on the server, or one the client cannot encode) is the message's own.
_VALUE_REFUSED: tuple[type[Exception], ...] = (asyncpg.DataError, asyncpg.exceptions._base.DataError)

_BROKER_UNAVAILABLE: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ChannelClosed,
    aiormq.exceptions.ConnectionClosed,
)


# Every exception class that may mean an unavailable dependency (HTTP maps them to 503).
DEPENDENCY_FAILURES: tuple[type[Exception], ...] = _DATABASE_UNAVAILABLE + _BROKER_UNAVAILABLE


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__
    return seen


def unavailable_dependency(exc: BaseException) -> Dependency | None:
    """The dependency whose unavailability caused `exc`, or None when the failure may be the message's own."""
    if isinstance(exc, _VALUE_REFUSED):
        return None
    for link in _chain(exc):
        if isinstance(link, _BROKER_UNAVAILABLE):
            return Dependency.BROKER
        if isinstance(link, _DATABASE_UNAVAILABLE):
            return Dependency.DATABASE
    return None


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter: a random delay in [base/2, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 0), 30)))
    floor = min(base / 2, ceiling)
    return (rng or random).uniform(floor, ceiling)


@dataclass(frozen=True)
class RetryVerdict:
    """What to do with a message after a dependency failure, given how the dependency answered."""

    retry_in_process: bool
    strikes: int


def after_dependency_failure(*, strikes: int, answered_at_once: bool, max_strikes: int) -> RetryVerdict:
    """A failure while the dependency answers at once (e.g. a lock timeout that keeps recurring) is a strike;
    after `max_strikes` of them the message goes back to the queue, where the delivery limit bounds it.
    A failure followed by an outage is never a strike: the message is held until the dependency is back."""
    if not answered_at_once:
        return RetryVerdict(retry_in_process=True, strikes=strikes)
    strikes += 1
    return RetryVerdict(retry_in_process=strikes < max_strikes, strikes=strikes)


# Failures after which pooled connections are likely dead; a lock timeout or a deadlock leaves them usable.
_CONCURRENCY_REFUSALS: tuple[type[Exception], ...] = (
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
)


def loses_connections(exc: BaseException) -> bool:
    return not isinstance(exc, _CONCURRENCY_REFUSALS)
