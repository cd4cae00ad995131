"""Faults: the outbox relay recovers at once after a database restart and after a broker outage.

After PostgreSQL restarts the relay takes its LISTEN connection again, so the next committed event is
published on its NOTIFY (the poll interval is set far too long to hide a lost LISTEN); after the broker
link is restored publishing resumes within a couple of seconds, not after a long back-off (issue 10,
"The outbox relays recover at once").
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import pytest

from dx_shared.envelope import CloudEvent
from dx_shared.outbox import enqueue, listener_application_name
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import nominated, wait_until
from tests.support import BusProbe, running_app
from tests.support.postgres import PrivatePostgres
from tests.support.proxy import CuttableProxy, through

pytestmark = pytest.mark.integration

POLL_NEVER = 60.0


async def _commit(settings: Settings, event: CloudEvent) -> float:
    """Commits the event to the toy's outbox on a connection of its own; returns the moment of the commit."""
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "toy"})
    try:
        async with conn.transaction():
            await enqueue(conn, event)
        return time.monotonic()
    finally:
        await conn.close()


async def _listeners(settings: Settings) -> int:
    """The relay's LISTEN sessions on the server (the issue counted 7 before a restart and 0 after)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            listener_application_name("toy"),
        )
        return int(found or 0)
    finally:
        await conn.close()


async def _marked_published(settings: Settings, event: CloudEvent) -> bool:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return bool(
            await conn.fetchval("SELECT published_at IS NOT NULL FROM toy.outbox WHERE event_id = $1", event.id)
        )
    finally:
        await conn.close()


async def _published_within(probe: BusProbe, event: CloudEvent, seconds: float, since: float) -> float:
    await probe.wait_for(lambda events: any(seen.id == event.id for seen in events), timeout=seconds + 5)
    return time.monotonic() - since


async def test_after_a_database_restart_the_next_committed_event_is_published_on_its_notify(
    outage_settings: Settings, private_pg: PrivatePostgres
) -> None:
    settings = outage_settings.model_copy(update={"outbox_poll_interval": POLL_NEVER})
    first, after_restart = nominated("S-BEFORE-RESTART"), nominated("S-AFTER-RESTART")
    async with BusProbe(settings, ["nomination.#"]) as probe, running_app(toy_service.create_app, settings):
        committed = await _commit(settings, first)
        assert await _published_within(probe, first, 1.0, committed) < 1.0
        await wait_until(lambda: _marked_published(settings, first), timeout=10)
        assert await _listeners(settings) == 1

        await asyncio.to_thread(private_pg.stop, "fast")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(private_pg.start)
        # Long enough for the relay to settle back to its (very long) poll interval.
        await asyncio.sleep(3.0)

        assert await _listeners(settings) == 1, "the relay listens again on the new server"
        committed = await _commit(settings, after_restart)
        latency = await _published_within(probe, after_restart, 1.0, committed)
        assert latency < 1.0, f"published {latency:.2f}s after its commit: NOTIFY was not heard"
        await probe.quiet(0.5)
    assert [event.id for event in probe.events] == [first.id, after_restart.id]


async def test_after_a_broker_outage_publishing_resumes_within_two_seconds_of_the_broker_answering(
    settings: Settings,
) -> None:
    broker = urlsplit(settings.amqp_url)
    proxy = CuttableProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await proxy.start()
    service_settings = settings.model_copy(
        update={"amqp_url": through(settings.amqp_url, proxy), "outbox_poll_interval": POLL_NEVER}
    )
    during = [nominated(f"S-CUT-{n}") for n in range(3)]
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, service_settings) as client,
    ):
        pool = client.app.state.pool  # type: ignore[attr-defined]
        await proxy.cut()
        for event in during:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
            await asyncio.sleep(1.0)
        # Long enough for a relay with an exponential back-off to have grown it well past a few seconds.
        await asyncio.sleep(12.0)
        assert probe.events == []
        await proxy.restore()
        restored = time.monotonic()
        wanted = {event.id for event in during}
        await probe.wait_for(lambda events: wanted <= {event.id for event in events}, timeout=30)
        latency = time.monotonic() - restored
        await probe.quiet(0.5)
        assert latency < 2.5, f"publishing resumed {latency:.2f}s after the broker answered again"
        assert sorted(event.id for event in probe.events) == sorted(wanted), "each event exactly once"
    await proxy.cut()
