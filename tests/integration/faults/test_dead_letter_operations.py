"""Operators inspect dead letters and re-drive them to their queue, acked from the DLQ only once confirmed."""

from __future__ import annotations

import aio_pika
import pytest

from dx_shared.settings import Settings
from dx_tools import dead_letters as command
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import effects, nominated, queue_depth, wait_until
from tests.support import publish_event, publish_raw, running_app

pytestmark = pytest.mark.integration


async def _run(settings: Settings, *argv: str) -> int:
    return await command.run(command.parser().parse_args(list(argv)), settings)


async def test_dead_letters_are_listed_without_payload_and_a_redriven_one_is_applied_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"delivery_limit": 2})
    queue = f"{settings.queue_prefix}toy.events"
    unlucky = nominated("S-UNLUCKY")
    toy_service.FAILURES["S-UNLUCKY"] = 1_000
    async with running_app(toy_service.create_app, settings):
        await publish_event(settings, unlucky)
        await publish_event(settings, nominated("poison"))
        await publish_raw(settings, b"{not json", "nomination.TraineeNominated.v1", message_id="garbage-1")

        async def three_dead() -> bool:
            return await queue_depth(settings, f"{queue}.dlq") == 3

        await wait_until(three_dead, timeout=30)

        capsys.readouterr()
        assert await _run(settings, "list", "--queue", "toy.events") == 0
        listing = capsys.readouterr().out
        assert "3 dead letter(s)" in listing
        assert unlucky.id in listing and "jp.aomori.dx.TraineeNominated.v1" in listing
        assert "delivery_limit" in listing or "rejected" in listing, listing
        assert "not JSON" in listing
        assert "S-UNLUCKY" not in listing, "the listing shows no payload data"
        assert await queue_depth(settings, f"{queue}.dlq") == 3, "listing leaves every dead letter in place"

        toy_service.FAILURES["S-UNLUCKY"] = 0  # the cause is fixed; the event can now be applied
        assert await _run(settings, "redrive", "--queue", "toy.events", "--id", unlucky.id) == 0

        async def applied() -> bool:
            return await effects(settings, "S-UNLUCKY") == [unlucky.id]

        await wait_until(applied, timeout=20)
        assert await queue_depth(settings, f"{queue}.dlq") == 2, "only the re-driven message left the DLQ"

        assert await _run(settings, "redrive", "--queue", "toy.events", "--id", "no-such-event") == 1
        assert await _run(settings, "discard", "--queue", "toy.events", "--all") == 0
        assert await queue_depth(settings, f"{queue}.dlq") == 0
    assert await effects(settings, "S-UNLUCKY") == [unlucky.id]


async def test_redrive_of_a_queue_that_no_longer_exists_keeps_the_dead_letter(settings: Settings) -> None:
    queue = f"{settings.queue_prefix}toy.events"
    async with running_app(toy_service.create_app, settings):
        await publish_raw(settings, b"{not json", "nomination.TraineeNominated.v1", message_id="garbage-2")

        async def dead() -> bool:
            return await queue_depth(settings, f"{queue}.dlq") == 1

        await wait_until(dead, timeout=20)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await _run(settings, "redrive", "--queue", "toy.events", "--all")
    assert await queue_depth(settings, f"{queue}.dlq") == 1, "unconfirmed, so never acked from the DLQ"
