"""P8 with replicas: two instances consume the same shuffled, duplicated facts and end in the same
decisions as any single, orderly run, each decision announced once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime

import pytest

from dx_shared.envelope import CloudEvent
from dx_shared.settings import Settings
from progression.main import create_app
from tests.integration.progression.conftest import pool_of, settled
from tests.integration.progression.progression_events import (
    completed,
    curriculum,
    nominated,
    standing_decisions,
    waived,
    withdrawn,
)
from tests.support.bus import BusProbe, publish_event
from tests.support.services import running_app

pytestmark = pytest.mark.integration

CLOSE_2024 = "close FY2024"
NEVER_IN_TIME = datetime.fromisoformat("2099-01-01T00:00:00+09:00")


def facts() -> list[CloudEvent]:
    return [
        curriculum(2024, 1, ["s1a", "s1b"]),
        curriculum(2024, 1, ["s1a", "s1b", "s1c"], revision=2),  # changed during the year
        curriculum(2025, 1, ["x1", "x2"]),
        curriculum(2025, 2, ["y1", "y2"]),
        # 200001 completes stage 1 (the first revision) and stage 2, and is nominated for a third year.
        nominated("200001", 2024, "recommended"),
        completed("200001", "s1a", 2024),
        completed("200001", "s1b", 2024),
        nominated("200001", 2025),
        completed("200001", "y1", 2025),
        completed("200001", "y2", 2025),
        nominated("200001", 2026),
        # 200002 completes half of stage 1 in time; the other half is recorded after the close.
        nominated("200002", 2024),
        completed("200002", "s1a", 2024),
        completed("200002", "s1b", 2024, recorded_at=NEVER_IN_TIME),
        nominated("200002", 2025),
        # 200003 withdraws the first year before any completion, and starts again the next.
        nominated("200003", 2024),
        withdrawn("200003", 2024),
        nominated("200003", 2025),
        # 200004 withdraws after a completion: the year stands and, not completed, is repeated.
        nominated("200004", 2024),
        completed("200004", "s1a", 2024),
        withdrawn("200004", 2024),
        nominated("200004", 2025),
        # 200005 starts in 2025 and completes stage 1 with a waiver and a session.
        nominated("200005", 2025, "recommended"),
        waived("200005", "x1", 2025),
        completed("200005", "x2", 2025),
    ]


EXPECTED = {
    ("200001", 2024, "StageAdvanced", 0, 1),
    ("200001", 2024, "StageCompleted", 1),
    ("200001", 2025, "StageAdvanced", 1, 2),
    ("200001", 2025, "StageCompleted", 2),
    ("200001", 2026, "StageAdvanced", 2, 3),
    ("200002", 2024, "StageAdvanced", 0, 1),
    ("200002", 2025, "StageRepeated", 1, "not_completed"),
    ("200003", 2025, "StageAdvanced", 0, 1),
    ("200004", 2024, "StageAdvanced", 0, 1),
    ("200004", 2025, "StageRepeated", 1, "not_completed"),
    ("200005", 2025, "StageAdvanced", 0, 1),
    ("200005", 2025, "StageCompleted", 1),
}


def shuffled_with_duplicates(seed: int) -> list[CloudEvent | str]:
    rng = random.Random(seed)
    stream: list[CloudEvent | str] = [*facts(), CLOSE_2024]
    rng.shuffle(stream)
    for fact in rng.sample(facts(), 8):
        stream.insert(rng.randrange(len(stream) + 1), fact)
    return stream


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_two_instances_end_in_exactly_the_expected_decisions_each_announced_once(
    settings: Settings, seed: int
) -> None:
    stream = shuffled_with_duplicates(seed)
    async with (
        running_app(create_app, settings) as first,
        running_app(create_app, settings) as second,
        BusProbe(settings, ["progression.#"]) as probe,
    ):
        closings = []
        for index, item in enumerate(stream):
            if isinstance(item, CloudEvent):
                await publish_event(settings, item)
            else:
                instance = first if index % 2 else second
                closings.append(asyncio.create_task(instance.post("/api/v1/fiscal-years/2024/close")))
        assert [(await task).status_code for task in closings] == [201]
        await settled(first, probe, facts())

        outbox = await pool_of(first).fetchval("SELECT count(*) FROM outbox WHERE routing_key LIKE 'progression.%'")
        logged = await pool_of(second).fetchval("SELECT count(*) FROM decision_log")

    announced = Counter(event.id for event in probe.events)
    assert [event_id for event_id, times in announced.items() if times > 1] == []
    assert standing_decisions(probe.events) == EXPECTED
    assert len(probe.of_type("FiscalYearClosed")) == 1
    assert outbox == len(announced) == logged + 1  # every decision, and the closing, announced once
