"""Faults: an outage of the database is not the message's fault, so it never dead-letters a valid event.

A private PostgreSQL is kept down for longer than the quorum queue's delivery limit's worth of immediate
retries while events keep arriving; once it is back, every event is applied exactly once and nothing is in
any dead-letter queue (issue 10, "An outage must never dead-letter a valid event").
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from dx_shared.settings import Settings
from reporting.main import create_app as create_reporting
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import effects, nominated, queue_depth, wait_until
from tests.support import publish_event, running_app
from tests.support.bus import publish_events
from tests.support.postgres import PrivatePostgres

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 12.0


async def _inbox_count(settings: Settings, schema: str) -> int:
    """The events the service recorded as consumed: its inbox, or reporting's event log (its one record)."""
    table = "event_log" if schema == "reporting" else "inbox"
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}"))
    finally:
        await conn.close()


async def test_a_database_outage_longer_than_the_delivery_limit_dead_letters_no_valid_event(
    outage_settings: Settings, private_pg: PrivatePostgres
) -> None:
    settings = outage_settings
    toy_queue = f"{settings.queue_prefix}toy.events"
    reporting_queue = f"{settings.queue_prefix}reporting.events"
    before = [nominated(f"S-BEFORE-{n}") for n in range(3)]
    during = [nominated(f"S-DURING-{n}") for n in range(12)]
    everything = before + during
    async with (
        running_app(toy_service.create_app, settings),
        running_app(create_reporting, settings),
    ):
        await publish_events(settings, before)
        await wait_until(lambda: _applied(settings, len(before)), timeout=30)

        await asyncio.to_thread(private_pg.stop, "fast")
        stopped = time.monotonic()
        for event in during:
            await publish_event(settings, event)
            await asyncio.sleep(OUTAGE_SECONDS / len(during))
        assert time.monotonic() - stopped >= OUTAGE_SECONDS - 1
        await asyncio.to_thread(private_pg.start)

        await wait_until(lambda: _applied(settings, len(everything)), timeout=60)
        await wait_until(lambda: _inbox_has(settings, "reporting", len(everything)), timeout=60)
        await asyncio.sleep(1.0)
        assert await queue_depth(settings, toy_queue) == 0
        assert await queue_depth(settings, reporting_queue) == 0

    applied = await effects(settings)
    assert sorted(applied) == sorted(event.id for event in everything), "every event applied exactly once"
    assert await _inbox_count(settings, "reporting") == len(everything)
    assert await queue_depth(settings, f"{toy_queue}.dlq") == 0, "nothing dead-lettered by the outage"
    assert await queue_depth(settings, f"{reporting_queue}.dlq") == 0, "nothing dead-lettered by the outage"


async def _applied(settings: Settings, count: int) -> bool:
    try:
        return len(await effects(settings)) >= count
    except (OSError, asyncpg.PostgresError):
        return False


async def _inbox_has(settings: Settings, schema: str, count: int) -> bool:
    try:
        return await _inbox_count(settings, schema) >= count
    except (OSError, asyncpg.PostgresError):
        return False


async def test_a_deadlock_that_recurs_while_the_database_answers_is_retried_boundedly_then_dead_lettered(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"consumer_max_strikes": 3, "delivery_limit": 2})
    queue = f"{settings.queue_prefix}toy.events"
    after = nominated("S-AFTER-DEADLOCK")
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, nominated("S-DEADLOCK-1"))
        await publish_event(settings, after)

        async def dead() -> bool:
            return await queue_depth(settings, f"{queue}.dlq") == 1

        await wait_until(dead, timeout=60)
        await wait_until(lambda: _applied(settings, 1), timeout=30)
    attempts = toy_service.DEADLOCKS["S-DEADLOCK-1"]
    assert 3 * 2 <= attempts <= 3 * 3, f"strikes x deliveries expected, saw {attempts}"
    assert await effects(settings) == [after.id], "the queue moved on"
