"""Batched consumption keeps the one-by-one outcomes (issue 12), on the real PostgreSQL and RabbitMQ.

A burst is published while the toy's consumer waits (its handler held at `toy_service.GATE`), so the
rest arrives together and is applied as batches: a poisoned event and a malformed message among them
are dead-lettered with their reasons, an event already applied and an event repeated inside the burst
have no second effect, every other event is applied once, and the queue ends empty (every delivery
settled, the good ones by a multi-ack after their commit).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dx_shared.bus import DEAD_LETTER_REASON_HEADER
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.support import publish_event, publish_raw, running_app
from tests.support.bus import publish_events

from .test_messaging import dead_letters, effects, nominated, queue_depth, wait_until

pytestmark = pytest.mark.integration


async def test_a_batch_dead_letters_its_bad_events_alone_and_applies_every_other_event_once(settings: Settings) -> None:
    settings = settings.model_copy(update={"prefetch": 16, "consumer_batch_size": 16, "consumer_batch_wait_ms": 200.0})
    queue = f"{settings.queue_prefix}toy.events"
    earlier = nominated("S-EARLIER")
    good = [nominated(f"S-BATCH-{n}") for n in range(10)]
    toy_service.GATE = asyncio.Event()
    try:
        async with running_app(toy_service.create_app, settings):
            await publish_event(settings, earlier)
            await wait_until(lambda: _has(settings, earlier.id))
            blocker = nominated("S-WAIT-1")
            await publish_event(settings, blocker)  # held: the burst queues up behind it
            await publish_events(settings, [*good[:5], nominated("poison"), good[5], good[5], earlier, *good[6:]])
            await publish_raw(settings, b"{not json", "nomination.TraineeNominated.v1", message_id="garbage-batch")
            await asyncio.sleep(0.5)
            toy_service.GATE.set()
            await wait_until(lambda: _count(settings, len(good) + 2), timeout=30)
            await wait_until(lambda: _depth(settings, f"{queue}.dlq", 2), timeout=30)
            await wait_until(lambda: _depth(settings, queue, 0), timeout=30)
    finally:
        toy_service.GATE = None
    applied = await effects(settings)
    assert sorted(applied) == sorted([earlier.id, blocker.id, *(event.id for event in good)]), "each event once"
    reasons = {
        message.message_id: str(message.headers[DEAD_LETTER_REASON_HEADER])
        for message in await dead_letters(settings, queue)
    }
    assert "not JSON" in reasons["garbage-batch"]
    assert any("poison" in reason for reason in reasons.values()), reasons
    assert len(reasons) == 2, reasons
    # Applied in batches: rows of one transaction share its start time (one by one, ten would differ).
    conn = await asyncpg.connect(settings.database_url)
    try:
        moments = await conn.fetchval(
            "SELECT count(DISTINCT processed_at) FROM toy.inbox WHERE event_id = ANY($1::text[])",
            [event.id for event in good],
        )
    finally:
        await conn.close()
    assert moments <= 3, f"the burst took {moments} transactions"


async def _has(settings: Settings, event_id: str) -> bool:
    return event_id in await effects(settings)


async def _count(settings: Settings, count: int) -> bool:
    return len(await effects(settings)) >= count


async def _depth(settings: Settings, queue: str, depth: int) -> bool:
    return await queue_depth(settings, queue) == depth
