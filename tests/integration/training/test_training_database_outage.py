"""Chaos: the database link fails under the webhook (a proxy is cut; the shared server keeps running).

2xx means durably stored: while the database is unreachable the sender is told to retry (503, problem
JSON, never 500), and its retry after the outage is recorded exactly once.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
import pytest

from dx_shared.settings import Settings
from tests.integration.training.conftest import completion_document, deliver, schedule
from tests.support import running_app
from tests.support.proxy import CuttableProxy, through
from training.main import create_app

pytestmark = pytest.mark.integration


async def test_a_delivery_during_a_database_outage_is_refused_for_retry_and_counted_once_after(
    settings: Settings,
) -> None:
    database = urlsplit(settings.database_url)
    proxy = CuttableProxy(database.hostname or "127.0.0.1", database.port or 5432)
    await proxy.start()
    behind_proxy = settings.model_copy(update={"database_url": through(settings.database_url, proxy)})
    async with running_app(create_app, behind_proxy) as client:
        assert (await schedule(client)).status_code == 201
        await proxy.cut()
        during = await deliver(client, completion_document(), msg_id="msg_outage_1")
        assert during.status_code == 503
        assert during.headers["content-type"].startswith("application/problem+json")
        await proxy.restore()
        after = None
        for _attempt in range(20):
            after = await deliver(client, completion_document(), msg_id="msg_outage_1")
            if after.status_code != 503:
                break
        assert after is not None and after.status_code == 200, after.text if after else None
        again = await deliver(client, completion_document(), msg_id="msg_outage_1")
        assert again.status_code == 200
    await proxy.cut()
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM training.completions") == 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM training.outbox WHERE routing_key = 'training.SessionCompleted.v1'"
            )
            == 1
        )
    finally:
        await conn.close()
