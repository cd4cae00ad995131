"""A consumer takes the routing key as the authenticated producer and checks the event against it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dx_shared.envelope import CloudEvent, producer_mismatch


def event(source: str, name: str) -> CloudEvent:
    return CloudEvent(id="e-1", source=source, type=f"jp.aomori.dx.{name}.v1", time=datetime(2025, 4, 1, tzinfo=UTC))


def test_an_event_from_the_producer_its_key_names_passes() -> None:
    assert producer_mismatch(event("/dx/training", "SessionCompleted"), "training.SessionCompleted.v1") is None
    # An event type this version does not know, from the producer its key names: not a mismatch.
    assert producer_mismatch(event("/dx/training", "SomethingNew"), "training.SomethingNew.v1") is None


@pytest.mark.parametrize(
    ("source", "name", "routing_key", "says"),
    [
        ("/dx/nomination", "SessionCompleted", "training.SessionCompleted.v1", "is not the producer 'training'"),
        ("/dx/training", "SessionCompleted", "training.SessionScheduled.v1", "does not match routing key"),
        ("/dx/training", "TraineeNominated", "training.TraineeNominated.v1", "produced by 'nomination'"),
        ("/dx/training", "SessionCompleted", "", "names no producer"),
        ("/dx/training", "SessionCompleted", "training", "names no producer"),
        ("/elsewhere/training", "SessionCompleted", "training.SessionCompleted.v1", "is not the producer"),
    ],
)
def test_an_event_not_from_the_producer_its_key_names_is_refused(
    source: str, name: str, routing_key: str, says: str
) -> None:
    reason = producer_mismatch(event(source, name), routing_key)
    assert reason is not None and says in reason
