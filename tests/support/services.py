"""Running a service in-process (its real lifespan: migrations, broker, subscribers, outbox relay).

The client carries a DX-office person's access token (every scope) from the test identity provider; a
request acts as someone else with `headers=bearer(role=..., ...)` (tests.support.identity)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from dx_shared.settings import Settings
from tests.support.identity import bearer


@contextlib.asynccontextmanager
async def running_app(
    create_app: Callable[[Settings], FastAPI], settings: Settings, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """`headers`: who the client's requests come from (default: a DX-office person, every scope; pass {}
    for a client without a token)."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            timeout=30,
            headers=bearer() if headers is None else headers,
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def pool_of(client: httpx.AsyncClient) -> asyncpg.Pool:
    """The database pool of the service behind a `running_app` client."""
    pool: asyncpg.Pool = client.app.state.pool  # type: ignore[attr-defined]
    return pool
