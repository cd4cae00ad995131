"""Several broker addresses (DX_AMQP_URL lists a cluster's nodes): a service starts on any node that
answers and, when its node goes away, its consumers and its outbox relay carry on through another.

The two "nodes" here are two proxies in front of the shared broker, so a node can die without stopping
the shared server; tests/e2e/test_rabbitmq_cluster.py kills a node of a real private cluster.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from dx_shared.bus import renew_publishing_channel
from dx_shared.outbox import enqueue
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import effects, nominated
from tests.support import publish_event, running_app
from tests.support.proxy import CuttableProxy, through
from tests.support.services import pool_of

pytestmark = pytest.mark.integration


async def _two_nodes(settings: Settings) -> tuple[CuttableProxy, CuttableProxy, Settings]:
    broker = urlsplit(settings.amqp_url)
    first = CuttableProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    second = CuttableProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await first.start()
    await second.start()
    addresses = f"{through(settings.amqp_url, first)}  {through(settings.amqp_url, second)}"
    return first, second, settings.model_copy(update={"amqp_url": addresses, "broker_reconnect_interval": 0.5})


async def _wait_for_effects(settings: Settings, wanted: set[str], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = await effects(settings)
        if wanted <= set(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.3)


async def test_a_service_starts_on_the_second_address_when_the_first_is_down(settings: Settings) -> None:
    first, second, service_settings = await _two_nodes(settings)
    await first.cut()
    try:
        async with running_app(toy_service.create_app, service_settings) as client:
            assert (await client.get("/readyz")).json()["status"] == "ready"
            event = nominated("S-FAILOVER-START")
            await publish_event(settings, event)
            assert await _wait_for_effects(settings, {event.id}) == [event.id]
    finally:
        await second.cut()


async def test_consumers_and_the_relay_move_to_another_node_when_theirs_dies(settings: Settings) -> None:
    first, second, service_settings = await _two_nodes(settings)
    try:
        async with running_app(toy_service.create_app, service_settings) as client:
            before = nominated("S-FAILOVER-0")
            await publish_event(settings, before)
            assert await _wait_for_effects(settings, {before.id}) == [before.id]

            await first.cut()  # the node the service is connected to dies, and stays dead
            consumed = [nominated(f"S-FAILOVER-C{n}") for n in range(5)]
            relayed = [nominated(f"S-FAILOVER-R{n}") for n in range(5)]
            for event in consumed:
                await publish_event(settings, event)
            async with pool_of(client).acquire() as conn, conn.transaction():
                for event in relayed:
                    await enqueue(conn, event)

            wanted = {event.id for event in [before, *consumed, *relayed]}
            seen = await _wait_for_effects(settings, wanted)
            assert sorted(seen) == sorted(wanted), "each event has its effect once, through the other node"
            assert await pool_of(client).fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
            ready = (await client.get("/readyz")).json()
            assert ready["status"] == "ready", ready
    finally:
        await first.cut()
        await second.cut()


async def test_the_relay_publishes_on_after_its_channel_is_renewed(settings: Settings) -> None:
    """What the relay does when the broker nacks its publishes (RabbitMQ 3.10 after a node loss)."""
    async with running_app(toy_service.create_app, settings) as client:
        broker = client.app.state.broker  # type: ignore[attr-defined]
        channel = await broker.config.channel_manager.get_channel()
        underlay = await channel.get_underlay_channel()
        await renew_publishing_channel(broker)
        assert channel is await broker.config.channel_manager.get_channel(), "FastStream keeps its channel object"
        assert await channel.get_underlay_channel() is not underlay and not channel.is_closed, "on a new channel"
        event = nominated("S-RENEWED")
        async with pool_of(client).acquire() as conn, conn.transaction():
            await enqueue(conn, event)
        assert await _wait_for_effects(settings, {event.id}) == [event.id]
