"""The outbox publishes a committed event at once, on the relay's own channel (issue 12), and the relay's
loop stays the fallback: what the immediate path fails to publish, the loop publishes, and nothing is
published twice by the two paths.

The relay's poll interval is far too long to matter in these tests, so an event that arrives was
published either by the immediate path or by the loop on an explicit hand-back; the relay counts which.
"""

from __future__ import annotations

from collections import Counter

import aio_pika
import pytest

from dx_shared.outbox import OutboxInsert, OutboxRelay, enqueue, enqueue_many
from dx_shared.settings import Settings
from tests.integration.shared import toy_service
from tests.integration.shared.test_messaging import nominated, wait_until
from tests.support import BusProbe, running_app

pytestmark = pytest.mark.integration

POLL_NEVER = 60.0


def _relay(client: object) -> OutboxRelay:
    relay: OutboxRelay = client.app.state.relay  # type: ignore[attr-defined]
    assert relay.immediate is not None, "the immediate path is on by default"
    return relay


async def _wait_ready(relay: OutboxRelay) -> None:
    async def ready() -> bool:
        return relay.immediate is not None and relay.immediate.ready

    await wait_until(ready, timeout=10)


async def test_a_committed_event_is_published_at_once_by_the_immediate_path_not_by_the_loop(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"outbox_poll_interval": POLL_NEVER})
    in_transaction, autocommitted = nominated("S-AT-ONCE-1"), nominated("S-AT-ONCE-2")
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        relay = _relay(client)
        await _wait_ready(relay)
        loop_before = relay.loop_published
        pool = client.app.state.pool  # type: ignore[attr-defined]
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, in_transaction)
        async with pool.acquire() as conn:
            # Outside a transaction the statement commits by itself, before `enqueue` has its result.
            await enqueue(conn, autocommitted)
        wanted = {in_transaction.id, autocommitted.id}
        await probe.wait_for(lambda events: wanted <= {event.id for event in events})
        await probe.quiet(0.5)

        assert sorted(event.id for event in probe.events) == sorted(wanted)
        assert relay.immediate is not None
        assert relay.immediate.published == 2
        assert relay.loop_published == loop_before, "the loop published nothing"
        message = next(raw for raw in probe.raw if raw.message_id == in_transaction.id)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/cloudevents+json"
        assert message.correlation_id == in_transaction.correlationid
        assert message.app_id == "dx-toy"
        assert message.routing_key == "nomination.TraineeNominated.v1"

        async def marked() -> bool:
            unpublished = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            return int(unpublished) == 0

        await wait_until(marked)


async def test_an_event_the_immediate_path_fails_to_publish_is_published_by_the_loop(settings: Settings) -> None:
    settings = settings.model_copy(update={"outbox_poll_interval": POLL_NEVER})
    event = nominated("S-HANDED-BACK")
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        relay = _relay(client)
        await _wait_ready(relay)
        immediate = relay.immediate
        assert immediate is not None
        # A real refusal: the broker closes the channel of a publish to an exchange that does not exist.
        channel = immediate._channel
        assert channel is not None
        immediate._exchange = await channel.get_exchange(f"{settings.exchange}.missing", ensure=False)
        pool = client.app.state.pool  # type: ignore[attr-defined]
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, event)
        await probe.wait_for(lambda events: any(seen.id == event.id for seen in events))
        await probe.quiet(0.5)

        assert [seen.id for seen in probe.events] == [event.id], "published once"
        assert immediate.published == 0
        assert relay.loop_published >= 1, "the loop published it"
        assert await pool.fetchval("SELECT published_at IS NOT NULL FROM outbox WHERE event_id = $1", event.id)


async def test_events_are_published_once_while_the_loop_polls_beside_the_immediate_path(settings: Settings) -> None:
    settings = settings.model_copy(update={"outbox_poll_interval": 0.02})
    singles = [nominated(f"S-ONCE-{n}") for n in range(40)]
    batch = [nominated(f"S-ONCE-BATCH-{n}") for n in range(40)]
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        relay = _relay(client)
        await _wait_ready(relay)
        pool = client.app.state.pool  # type: ignore[attr-defined]
        for event in singles:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_many(conn, batch)
        wanted = {event.id for event in [*singles, *batch]}
        await probe.wait_for(lambda events: wanted <= {event.id for event in events}, timeout=30)
        await probe.quiet(1.0)

        copies = Counter(event.id for event in probe.events)
        assert {event_id for event_id, n in copies.items() if n > 1} == set(), "no event published twice"
        assert set(copies) == wanted
        assert relay.immediate is not None
        assert relay.immediate.published == len(wanted), "the immediate path published every one"


async def test_an_event_added_by_the_callers_own_statement_is_published_at_once_and_only_if_its_condition_held(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"outbox_poll_interval": POLL_NEVER})
    added, not_added = nominated("S-IN-STATEMENT-1"), nominated("S-IN-STATEMENT-2")
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(toy_service.create_app, settings) as client,
    ):
        relay = _relay(client)
        await _wait_ready(relay)
        loop_before = relay.loop_published
        pool = client.app.state.pool  # type: ignore[attr-defined]
        for event, holds in ((added, True), (not_added, False)):
            outboxed = OutboxInsert.of(event, first=2)
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "WITH condition AS (SELECT WHERE $1::boolean), "
                    + outboxed.cte("EXISTS (SELECT FROM condition)")
                    + " SELECT "
                    + OutboxInsert.selected,
                    holds,
                    *outboxed.values,
                )
                assert row is not None
                assert (row["outbox_seq"] is not None) is holds
                outboxed.held(row["outbox_seq"], row["outbox_name"])
        await probe.wait_for(lambda events: any(seen.id == added.id for seen in events))
        await probe.quiet(0.5)

        assert [event.id for event in probe.events] == [added.id]
        assert relay.immediate is not None and relay.immediate.published == 1
        assert relay.loop_published == loop_before, "published by the immediate path, not the loop"
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", not_added.id) == 0
