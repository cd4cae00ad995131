"""A poisoned outbox row cannot stall a service (issue 10).

A row the broker can never carry (here a correlation id longer than AMQP's 255-byte limit, refused by
the client library) fails each publish; after DX_OUTBOX_MAX_ATTEMPTS it moves to `outbox_dead` with its
error, the other rows are published, /readyz reports how long the oldest event waits, and the operator
command republishes (without the refused correlation id) or discards it.
"""

from __future__ import annotations

import time

import asyncpg
import pytest
from prometheus_client import generate_latest

from dx_shared.outbox import enqueue
from dx_shared.settings import Settings
from dx_tools import outbox as outbox_command
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import nominated, wait_until
from tests.support import BusProbe, running_app
from tests.support.services import pool_of

pytestmark = pytest.mark.integration


async def _dead(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(await conn.fetch("SELECT event_id, attempts, last_error FROM toy.outbox_dead"))
    finally:
        await conn.close()


async def test_a_row_that_can_never_be_published_is_set_aside_and_the_others_are_published(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"outbox_max_attempts": 3, "outbox_max_age": 3600.0})
    poisoned = nominated("S-POISONED").model_copy(update={"correlationid": "c" * 300})
    healthy = [nominated(f"S-HEALTHY-{n}") for n in range(5)]
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        pool = pool_of(client)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, healthy[0])
            await enqueue(conn, poisoned)
            for event in healthy[1:]:
                await enqueue(conn, event)
        wanted = {event.id for event in healthy}
        await probe.wait_for(lambda events: wanted <= {event.id for event in events}, timeout=20)

        async def moved() -> bool:
            return len(await _dead(settings)) == 1

        await wait_until(moved, timeout=30)
        dead = await _dead(settings)
        assert dead[0]["event_id"] == poisoned.id
        assert dead[0]["attempts"] == 3
        assert "255" in dead[0]["last_error"], dead[0]["last_error"]
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["outbox_oldest_unpublished_seconds"] == 0
        # The app runs in this process: its registry is the one /metrics serves on the internal port.
        metrics = generate_latest().decode()
        assert 'dx_outbox_oldest_unpublished_seconds{service="toy"}' in metrics
        assert 'dx_outbox_dead_total{service="toy"}' in metrics

        capsys.readouterr()
        listing = outbox_command.parser().parse_args(["list", "--service", "toy"])
        assert await outbox_command.run(listing, settings) == 0
        shown = capsys.readouterr().out
        assert poisoned.id in shown and "attempts=3" in shown
        assert "S-POISONED" not in shown, "no payload in the listing"

        again = outbox_command.parser().parse_args(
            ["republish", poisoned.id, "--service", "toy", "--drop-correlation-id"]
        )
        started = time.monotonic()
        assert await outbox_command.run(again, settings) == 0
        await probe.wait_for(lambda events: any(event.id == poisoned.id for event in events), timeout=10)
        assert time.monotonic() - started < 5
        assert await _dead(settings) == []
        await probe.quiet(0.5)
    assert sorted(event.id for event in probe.events) == sorted([*wanted, poisoned.id]), "each event once"


async def test_readyz_fails_while_the_oldest_unpublished_event_waits_longer_than_the_threshold(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"outbox_max_age": 60.0, "outbox_max_attempts": 1000})
    stuck = nominated("S-STUCK").model_copy(update={"correlationid": "c" * 300})
    async with running_app(toy_service.create_app, settings) as client:
        pool = pool_of(client)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, stuck)
            await conn.execute("UPDATE outbox SET created_at = now() - interval '5 minutes'")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["outbox_oldest_unpublished_seconds"] >= 300
        assert body["checks"]["outbox"].startswith("stalled")
        assert "Retry-After" in ready.headers


async def test_a_dead_outbox_row_can_be_discarded_and_the_discard_is_audited(settings: Settings) -> None:
    settings = settings.model_copy(update={"outbox_max_attempts": 1})
    poisoned = nominated("S-DISCARD").model_copy(update={"correlationid": "c" * 300})
    async with running_app(toy_service.create_app, settings) as client:
        async with pool_of(client).acquire() as conn, conn.transaction():
            await enqueue(conn, poisoned)

        async def moved() -> bool:
            return len(await _dead(settings)) == 1

        await wait_until(moved, timeout=20)
    drop = outbox_command.parser().parse_args(["discard", poisoned.id, "--service", "toy"])
    assert await outbox_command.run(drop, settings) == 0
    assert await _dead(settings) == []
    assert await outbox_command.run(drop, settings) == 1, "a second discard finds nothing"
