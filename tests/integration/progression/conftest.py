"""The progression service in-process on the test's own database and bus names, and waiting for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from dx_shared.envelope import CloudEvent
from dx_shared.settings import Settings
from progression.main import create_app
from tests.support.bus import BusProbe
from tests.support.services import pool_of, running_app


@pytest.fixture
async def progression(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, settings) as client:
        yield client




async def settled(
    client: httpx.AsyncClient, probe: BusProbe, facts: Iterable[CloudEvent], timeout: float = 30.0
) -> None:
    """Waits until every fact is in the inbox, every announced decision is published, and the bus is quiet."""
    wanted = {fact.id for fact in facts}
    pool = pool_of(client)
    deadline = time.monotonic() + timeout
    while True:
        consumed = {row["event_id"] for row in await pool.fetch("SELECT event_id FROM inbox")}
        unpublished = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if wanted <= consumed and unpublished == 0:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(wanted - consumed)} facts unconsumed, {unpublished} decisions unpublished")
        await asyncio.sleep(0.1)
    await probe.quiet(0.7)
