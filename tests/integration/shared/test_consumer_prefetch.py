"""The consumers' prefetch holds on the broker (issue 12): read back with `rabbitmqctl`, not assumed.

FastStream declared the queues on its default channel and its subscriber reused that queue object, so
the `Channel(prefetch_count=…)` it was given never reached the broker (`list_consumers` showed 0) and
every waiting message was in flight inside the service.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from yarl import URL

from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.support import publish_event, running_app

from .test_messaging import effects, nominated

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl on this machine"),
]


def _vhost(settings: Settings) -> str:
    return URL(settings.amqp_url).path.lstrip("/") or "/"


def _rabbitmqctl(*arguments: str) -> list[list[str]]:
    done = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", *arguments], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


async def _rows(*arguments: str) -> list[list[str]]:
    return await asyncio.to_thread(_rabbitmqctl, *arguments)


async def test_each_consumer_holds_at_most_its_prefetch_as_the_broker_reports_it(settings: Settings) -> None:
    settings = settings.model_copy(update={"prefetch": 7, "consumer_batch_size": 7})
    queue = f"{settings.queue_prefix}toy.events"
    vhost = _vhost(settings)
    toy_service.FAILURES.clear()
    async with running_app(toy_service.create_app, settings):
        consumers = [
            row for row in await _rows("list_consumers", "-p", vhost, "queue_name", "prefetch_count") if row[0] == queue
        ]
        assert consumers, f"no consumer on {queue}"
        assert [int(row[1]) for row in consumers] == [7] * len(consumers), consumers

        # And it bounds what is in flight: while the handler waits, the broker holds back the rest.
        toy_service.GATE = asyncio.Event()
        try:
            for index in range(20):
                await publish_event(settings, nominated(f"S-WAIT-{index}"))
            counts: tuple[int, int] = (0, 0)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = await _rows("list_queues", "-p", vhost, "name", "messages_unacknowledged", "messages_ready")
                counts = next(((int(row[1]), int(row[2])) for row in rows if row[0] == queue), (0, 0))
                if sum(counts) == 20 and counts[0] > 0:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # were the broker to ignore the prefetch, more would be delivered by now
            rows = await _rows("list_queues", "-p", vhost, "name", "messages_unacknowledged", "messages_ready")
            counts = next((int(row[1]), int(row[2])) for row in rows if row[0] == queue)
            assert counts == (7, 13), f"(unacked, ready) = {counts}"
        finally:
            toy_service.GATE.set()
            toy_service.GATE = None
        deadline = time.monotonic() + 30
        while len(await effects(settings)) < 20:
            assert time.monotonic() < deadline, "the held deliveries were applied once the handler went on"
            await asyncio.sleep(0.2)
