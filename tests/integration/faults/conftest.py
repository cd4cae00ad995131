"""A private PostgreSQL per test (stopped and started by the test), on the shared broker's vhost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dx_shared.settings import Settings
from tests.support import postgres
from tests.support.infra import create_database, unique_name
from tests.support.postgres import PrivatePostgres


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    if not postgres.available():
        pytest.skip("no initdb/pg_ctl on this machine (set DX_PG_BIN)")
    server = await asyncio.to_thread(PrivatePostgres)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


@pytest.fixture
async def outage_settings(settings: Settings, private_pg: PrivatePostgres) -> Settings:
    """The test's settings with the database on the private server, which the test may stop."""
    name = unique_name("dx_f")
    url = await create_database(private_pg.admin_url, name)
    return settings.model_copy(update={"database_url": url})
