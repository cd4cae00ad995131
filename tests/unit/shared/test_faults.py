"""Whose fault a failure is, and how long to wait: the rules that keep an outage from dead-lettering."""

from __future__ import annotations

import random

import aiormq.exceptions
import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dx_shared.faults import (
    Dependency,
    after_dependency_failure,
    backoff_delay,
    loses_connections,
    unavailable_dependency,
)


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.InternalClientError("unexpected connection state"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        TimeoutError(),
    ],
)
def test_a_database_that_does_not_answer_is_not_the_messages_fault(failure: Exception) -> None:
    assert unavailable_dependency(failure) is Dependency.DATABASE


@pytest.mark.parametrize(
    "failure",
    [
        aiormq.exceptions.AMQPConnectionError("connection lost"),
        aiormq.exceptions.ChannelInvalidStateError("channel closed"),
        aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"),
    ],
)
def test_a_broker_that_does_not_answer_is_not_the_messages_fault(failure: Exception) -> None:
    assert unavailable_dependency(failure) is Dependency.BROKER


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
        asyncpg.InvalidTextRepresentationError("invalid input syntax for type integer"),
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        asyncpg.UniqueViolationError("duplicate key"),
        ValueError("a rule was broken"),
        KeyError("field"),
        RuntimeError("a handler's own trouble"),
    ],
)
def test_a_failure_of_the_message_itself_is_not_blamed_on_a_dependency(failure: Exception) -> None:
    assert unavailable_dependency(failure) is None


def test_a_wrapped_connection_loss_is_still_a_dependency_failure() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as exc:
            raise RuntimeError("could not load the person") from exc
    except RuntimeError as wrapped:
        assert unavailable_dependency(wrapped) is Dependency.DATABASE


def test_a_lock_timeout_keeps_the_pooled_connections_but_a_restart_does_not() -> None:
    assert not loses_connections(asyncpg.LockNotAvailableError("lock timeout"))
    assert not loses_connections(asyncpg.DeadlockDetectedError("deadlock"))
    assert loses_connections(asyncpg.ConnectionDoesNotExistError("closed"))


def test_a_failure_followed_by_an_outage_is_never_a_strike() -> None:
    verdict = after_dependency_failure(strikes=9, answered_at_once=False, max_strikes=10)
    assert verdict.retry_in_process and verdict.strikes == 9


def test_a_failure_recurring_while_the_dependency_answers_goes_back_to_the_queue_after_the_last_strike() -> None:
    strikes = 0
    for _ in range(9):
        verdict = after_dependency_failure(strikes=strikes, answered_at_once=True, max_strikes=10)
        assert verdict.retry_in_process
        strikes = verdict.strikes
    last = after_dependency_failure(strikes=strikes, answered_at_once=True, max_strikes=10)
    assert not last.retry_in_process and last.strikes == 10


@given(attempt=st.integers(min_value=0, max_value=1000), seed=st.integers())
def test_a_back_off_is_jittered_between_half_the_base_and_the_cap(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, base=0.2, cap=5.0, rng=random.Random(seed))
    assert 0.1 <= delay <= min(5.0, 0.2 * 2**attempt)


def test_back_offs_of_many_consumers_are_spread_not_synchronised() -> None:
    rng = random.Random(7)
    delays = {round(backoff_delay(5, base=0.2, cap=5.0, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 10
