"""Database round trips per consumed event, counted by `dx_db_round_trips_total` (issue 12).

Progression records a fact and re-decides its person in at most 5 statements per fact, reporting
deduplicates and projects an event in at most 3, when the facts come as they do under load: a burst, which
the consumer takes in batches. The services run in-process on the real database and broker; the
consumer is given a pool of its own, labelled for the test, so the counter holds its statements only
(not the outbox relay's, which has its own pool). Counts, not timings: the figures are deterministic up to
how a burst splits into batches, and the bounds hold for any split into batches of 4 or more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from dx_shared.database import create_pool
from dx_shared.envelope import CloudEvent
from dx_shared.settings import Settings
from progression.main import create_app as create_progression
from reporting.main import create_app as create_reporting
from tests.integration.progression import progression_events as facts
from tests.integration.reporting import event_factory as reports
from tests.support import running_app
from tests.support.bus import publish_events
from tests.support.services import pool_of

pytestmark = pytest.mark.integration

PEOPLE = 16


def _burst_settings(settings: Settings) -> Settings:
    # A burst of 16 published in one go fills a batch; the wait only lets a slow machine deliver all of it.
    return settings.model_copy(update={"prefetch": 16, "consumer_batch_size": 16, "consumer_batch_wait_ms": 200.0})


def _trips(label: str) -> float:
    return REGISTRY.get_sample_value("dx_db_round_trips_total", {"service": label}) or 0.0


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


async def _consume_counted(
    client: httpx.AsyncClient,
    settings: Settings,
    schema: str,
    label: str,
    events: Sequence[CloudEvent],
    consumed: str,
) -> float:
    """Round trips per event of the consumer while it consumes `events` (published as one burst)."""
    app: FastAPI = client.app  # type: ignore[attr-defined]
    served = pool_of(client)
    before_count = await _count(served, consumed)
    counted = await create_pool(settings.database_url_of(schema), schema, min_size=1, max_size=2, service=label)
    app.state.pool = counted
    try:
        before = _trips(label)
        await publish_events(settings, events)
        deadline = time.monotonic() + 60
        while await _count(served, consumed) < before_count + len(events):
            assert time.monotonic() < deadline, "the burst was not consumed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the query logger counts from the event loop's next turn
        return (_trips(label) - before) / len(events)
    finally:
        app.state.pool = served
        await counted.close()


async def _settle(client: httpx.AsyncClient, consumed: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while await _count(pool_of(client), consumed) < count:
        assert time.monotonic() < deadline, "the set-up was not consumed"
        await asyncio.sleep(0.1)


async def test_progression_needs_at_most_five_round_trips_per_fact(settings: Settings) -> None:
    settings = _burst_settings(settings)
    people = [f"31{n:05d}" for n in range(PEOPLE)]
    setup = [facts.curriculum(2024, 1, ["s1", "s2", "s3"]), *(facts.nominated(p, 2024) for p in people)]
    inbox = "SELECT count(*) FROM inbox"
    async with running_app(create_progression, settings) as progression:
        await publish_events(settings, setup)
        await _settle(progression, inbox, len(setup))
        # The first burst also pays each connection's first statements (prepare, type introspection).
        warm_up = await _consume_counted(
            progression,
            settings,
            "progression",
            "test-progression-warm",
            [facts.completed(p, "s1", 2024) for p in people],
            inbox,
        )
        # A fact that changes nothing announced yet, and one that completes the stage for every person.
        quiet = await _consume_counted(
            progression,
            settings,
            "progression",
            "test-progression-quiet",
            [facts.completed(p, "s2", 2024) for p in people],
            inbox,
        )
        deciding = await _consume_counted(
            progression,
            settings,
            "progression",
            "test-progression-deciding",
            [facts.completed(p, "s3", 2024) for p in people],
            inbox,
        )
        announced = await _count(
            pool_of(progression), "SELECT count(*) FROM decision_log WHERE event = 'StageCompleted'"
        )
        port = progression.app.state.metrics_port  # type: ignore[attr-defined]
        async with httpx.AsyncClient() as scraper:
            exposed = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'dx_db_round_trips_total{service="progression"}' in exposed, "served with the other dx_ metrics"
    print(f"progression round trips per fact: warm-up {warm_up:.2f}, quiet {quiet:.2f}, deciding {deciding:.2f}")
    assert announced == PEOPLE, "the last burst completed stage 1 for everyone (it is the deciding case)"
    assert quiet <= 5, quiet
    assert deciding <= 5, deciding


async def test_reporting_needs_at_most_three_round_trips_per_event(settings: Settings) -> None:
    settings = _burst_settings(settings)
    people = [f"32{n:05d}" for n in range(PEOPLE)]
    setup = [
        reports.departments(2024, ("0101", "総務課", "総務部")),
        reports.roster(2024, *((p, "0101", False) for p in people)),
        reports.session("R-S1", 2024, "promoter"),
        *(reports.nominated(f"n-{p}", p, "0101", 2024, "self") for p in people),
    ]
    log = "SELECT count(*) FROM event_log"

    def burst(tag: str) -> list[CloudEvent]:
        """Half the people complete the session and are announced stage 1 complete: 16 events."""
        return [
            item
            for p in people[: PEOPLE // 2]
            for item in (
                reports.session_completed(f"c-{tag}-{p}", "R-S1", p, 2024),
                reports.completed_stage(p, 2024, 1),
            )
        ]

    async with running_app(create_reporting, settings) as reporting:
        await publish_events(settings, setup)
        await _settle(reporting, log, len(setup))
        warm_up = await _consume_counted(reporting, settings, "reporting", "test-reporting-warm", burst("w"), log)
        measured = await _consume_counted(reporting, settings, "reporting", "test-reporting", burst("m"), log)
        again = await _consume_counted(
            reporting,
            settings,
            "reporting",
            "test-reporting-others",
            [reports.advanced(p, 2024, 1, 2) for p in people],
            log,
        )
    print(f"reporting round trips per event: warm-up {warm_up:.2f}, completions {measured:.2f}, decisions {again:.2f}")
    assert measured <= 3, measured
    assert again <= 3, again
