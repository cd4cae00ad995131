"""Chaos: the broker link fails under a running service (a proxy is cut; the shared server keeps running)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from dx_shared.outbox import enqueue
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import nominated
from tests.support import BusProbe, running_app
from tests.support.proxy import CuttableProxy, through

pytestmark = pytest.mark.integration


async def test_events_committed_while_the_broker_is_unreachable_are_published_once_it_returns(
    settings: Settings,
) -> None:
    broker = urlsplit(settings.amqp_url)
    proxy = CuttableProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await proxy.start()
    service_settings = settings.model_copy(update={"amqp_url": through(settings.amqp_url, proxy)})
    during = [nominated(f"S-OUTAGE-{n}") for n in range(5)]
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, service_settings) as client,
    ):
        pool = client.app.state.pool  # type: ignore[attr-defined]
        await proxy.cut()
        for event in during:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
        await asyncio.sleep(2.0)
        pending = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        assert pending == len(during), "nothing can be confirmed while the broker is unreachable"
        assert probe.events == []
        await proxy.restore()
        wanted = {event.id for event in during}
        started = time.monotonic()
        await probe.wait_for(lambda events: wanted <= {event.id for event in events}, timeout=60)
        await probe.quiet(1.0)
        assert sorted(event.id for event in probe.events) == sorted(wanted), "each event exactly once"
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        assert time.monotonic() - started < 60
    await proxy.cut()
