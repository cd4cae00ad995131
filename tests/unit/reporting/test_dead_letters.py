"""Operations watch the dead-letter queue of every consumer queue in the system, named as declared."""

from __future__ import annotations

from dx_shared.bus import CONSUMER_QUEUES
from dx_shared.settings import Settings
from reporting.dead_letters import watched_dead_letter_queues


def test_the_pipeline_watches_the_dead_letter_queue_of_every_consumer_queue_with_the_prefix() -> None:
    watched = watched_dead_letter_queues(Settings(queue_prefix="run7."))

    assert watched == [
        "run7.nomination.events.dlq", "run7.training.rosters.dlq", "run7.progression.facts.dlq",
        "run7.reporting.events.dlq",
    ]
    assert len(watched) == len(CONSUMER_QUEUES)
