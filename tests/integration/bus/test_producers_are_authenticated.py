"""The bus authenticates producers: each service's own RabbitMQ user may publish only its own routing
keys (topic permissions), and a consumer dead-letters an event whose `source` is not the producer its
routing key names.

Each test makes its own vhost and users with rabbitmqctl and removes them afterwards.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import asyncpg
import pytest
from aiormq.exceptions import ChannelAccessRefused

from dx_shared import contracts as c
from dx_shared.bus import DEAD_LETTER_REASON_HEADER
from dx_shared.envelope import CONTENT_TYPE, CloudEvent, new_event
from dx_shared.settings import Settings
from dx_tools.broker_users import RabbitmqCtl, ensure, remove
from tests.integration.shared import toy_service
from tests.support import running_app
from tests.support.infra import Servers, with_vhost

pytestmark = pytest.mark.integration


def _rabbitmqctl_runnable() -> bool:
    return shutil.which("rabbitmqctl") is not None and RabbitmqCtl.runnable()


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60, check=True)


@dataclass(frozen=True)
class Bus:
    settings: Settings  # guest (the administrator) on the test's own vhost
    urls: dict[str, str]  # each service's own account


@pytest.fixture(scope="module")
def broker_accounts(servers: Servers) -> Iterator[tuple[str, dict[str, str]]]:
    """This module's own vhost, with the nomination and training users (rabbitmqctl is slow: made once)."""
    if not _rabbitmqctl_runnable():
        pytest.skip("rabbitmqctl is not runnable here (needs root or the rabbitmq user on the broker's machine)")
    vhost = f"dx-busauth-test-{uuid.uuid4().hex[:10]}"
    prefix = f"{vhost}-"
    broker = RabbitmqCtl()
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        on_vhost = Settings(amqp_url=with_vhost(servers.amqp_url, vhost))
        urls = ensure(
            broker, on_vhost, vhost=vhost, user_prefix=prefix, report=False, services=("nomination", "training")
        )
        yield vhost, urls
    finally:
        remove(broker, prefix)
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.fixture
def bus(settings: Settings, broker_accounts: tuple[str, dict[str, str]]) -> Bus:
    """The test's own database; the module's vhost with the default exchange and queue names."""
    vhost, urls = broker_accounts
    defaults = Settings()
    on_vhost = settings.model_copy(
        update={
            "amqp_url": with_vhost(settings.amqp_url, vhost),
            "exchange": defaults.exchange,
            "dead_letter_exchange": defaults.dead_letter_exchange,
            "queue_prefix": "",
        }
    )
    return Bus(on_vhost, urls)


def completed_event() -> CloudEvent:
    return new_event(
        c.SessionCompleted(
            completion_id=f"cmp-{uuid.uuid4().hex[:8]}",
            session_id="S-2024-001",
            staff_id="A1001",
            fiscal_year=2024,
            stage=1,
            method=c.Method.E_LEARNING,
            occurred_at=datetime(2024, 6, 1, 1, 0, tzinfo=UTC),
            recorded_at=datetime(2024, 6, 1, 1, 5, tzinfo=UTC),
            source=c.CompletionSource.WEBHOOK,
        ),
        subject="A1001",
    )


async def _bound_queue(settings: Settings) -> tuple[aio_pika.abc.AbstractRobustConnection, aio_pika.abc.AbstractQueue]:
    """As the administrator: the events exchange and a private queue bound to every key."""
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="#")
    return connection, queue


async def _publish_as(url: str, settings: Settings, event: CloudEvent, routing_key: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.exchange, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                event.to_bytes(),
                content_type=CONTENT_TYPE,
                message_id=event.id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )


async def _drain(queue: aio_pika.abc.AbstractQueue, wait: float = 1.0) -> list[aio_pika.abc.AbstractIncomingMessage]:
    await asyncio.sleep(wait)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(message)
    return found


async def test_a_service_cannot_publish_another_services_routing_key(bus: Bus) -> None:
    connection, queue = await _bound_queue(bus.settings)
    async with connection:
        event = completed_event()  # a training event, published with nomination's account
        with pytest.raises(ChannelAccessRefused) as refused:
            await _publish_as(bus.urls["nomination"], bus.settings, event, "training.SessionCompleted.v1")
        assert "ACCESS_REFUSED" in str(refused.value)
        assert "training.SessionCompleted.v1" in str(refused.value)
        assert await _drain(queue) == []


async def test_a_service_publishes_its_own_routing_key(bus: Bus) -> None:
    connection, queue = await _bound_queue(bus.settings)
    async with connection:
        event = completed_event()
        await _publish_as(bus.urls["training"], bus.settings, event, "training.SessionCompleted.v1")
        arrived = await _drain(queue)
        assert [message.message_id for message in arrived] == [event.id]
        assert arrived[0].routing_key == "training.SessionCompleted.v1"


async def test_a_service_cannot_configure_another_services_queue(bus: Bus) -> None:
    connection = await aio_pika.connect(bus.urls["training"])
    async with connection:
        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            await channel.declare_queue(f"{bus.settings.queue_prefix}progression.facts", durable=True)


def nominated(staff_id: str) -> CloudEvent:
    return new_event(
        c.TraineeNominated(
            nomination_id=f"n-{staff_id}", staff_id=staff_id, department_code="D01", fiscal_year=2024, slot=c.Slot.SELF
        ),
        subject=staff_id,
    )


async def _effects(settings: Settings) -> list[str]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return [row["staff_id"] for row in await conn.fetch("SELECT staff_id FROM toy.effects ORDER BY applied_at")]
    finally:
        await conn.close()


async def test_an_event_whose_source_is_not_its_producer_is_dead_lettered_with_its_reason(bus: Bus) -> None:
    settings = bus.settings
    queue = f"{settings.queue_prefix}toy.events"
    # Training may publish under `training.`; it claims to be nomination in the event's source.
    forged = nominated("S-FORGED")
    honest = nominated("S-HONEST")
    async with running_app(toy_service.create_app, settings):
        await _publish_as(bus.urls["nomination"], settings, honest, "nomination.TraineeNominated.v1")
        admin = await aio_pika.connect_robust(settings.amqp_url)
        async with admin:
            channel = await admin.channel()
            # The toy queue is bound to nomination.TraineeNominated.v1; bind the forged key too, as a
            # consumer with a wide binding (reporting's) would receive it.
            toy_queue = await channel.declare_queue(queue, passive=True)
            await toy_queue.bind(settings.exchange, routing_key="training.#")
            await _publish_as(bus.urls["training"], settings, forged, "training.TraineeNominated.v1")
            dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
            letters: list[aio_pika.abc.AbstractIncomingMessage] = []
            for _ in range(100):
                letters += await _drain(dlq, wait=0.1)
                if letters and await _effects(settings) == ["S-HONEST"]:
                    break
    assert [message.message_id for message in letters] == [forged.id]
    reason = str(letters[0].headers[DEAD_LETTER_REASON_HEADER])
    assert "producer mismatch" in reason and "/dx/nomination" in reason
    assert await _effects(settings) == ["S-HONEST"]
