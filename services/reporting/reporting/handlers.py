"""The reporting subscriber: every public event is logged as received and applied to the projections.

The event log is the service's one record of the events it consumed: inserting an event that is there
already changes nothing, so it deduplicates redeliveries (the subscription has no inbox), and
`reporting.rebuild` replays it. The log row and every projection change commit together. The consumer
hands over its deliveries in batches: one statement logs the batch, `project_batch` projects it.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from dx_shared import contracts as c
from dx_shared.consumer import Fresh, Subscription
from dx_shared.envelope import CloudEvent
from reporting.projections import Logged, project, project_batch
from reporting.repository import ProjectionStore


async def handle(conn: asyncpg.Connection, event: CloudEvent, payload: c.EventPayload) -> bool:
    """Logs and projects one event; False when it was logged (so applied) already."""
    store = ProjectionStore(conn)
    received_at = await store.log_event(event, payload.routing_key())
    if received_at is None:
        return False
    await project(store, event, payload, received_at)
    return True


async def handle_batch(conn: asyncpg.Connection, fresh: Sequence[Fresh]) -> set[str]:
    """Logs a batch in one statement and projects the events not logged before; returns their ids."""
    store = ProjectionStore(conn)
    logged = await store.log_events([(item.event, item.payload.routing_key()) for item in fresh])
    new = [
        Logged(item.event, item.payload, logged[item.event.id], item.scope) for item in fresh if item.event.id in logged
    ]
    if new:
        await project_batch(store, new)
    return set(logged)


subscription = Subscription(
    purpose="events",
    events=list(c.ALL_EVENTS),
    handler=handle,
    batch_handler=handle_batch,
    inbox=False,
    description="Every public event, kept in the event log and projected into the reports.",
)
