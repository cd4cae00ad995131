"""When the portal's database or a service cannot be reached, a page says so with 503 and Retry-After,
never a 500 (the portal runs in-process; its database link goes through a cuttable proxy)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from dx_shared.roles import Caller, Role
from dx_shared.settings import Settings
from portal.domain import SESSION_COOKIE
from portal.main import create_app
from portal.sessions import PostgresSessionStore, Tokens
from tests.support.idp import Idp
from tests.support.proxy import CuttableProxy, through
from tests.support.services import pool_of, running_app
from tests.support.system import free_port

pytestmark = pytest.mark.integration

STAFF_ID = "2600042"


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[CuttableProxy]:
    target = urlsplit(settings.database_url)
    link = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await link.start()
    yield link
    await link.cut()


@pytest.fixture
async def portal(settings: Settings, proxy: CuttableProxy) -> AsyncIterator[httpx.AsyncClient]:
    nowhere = f"http://127.0.0.1:{free_port()}"  # no service answers here
    portal_settings = settings.model_copy(update={
        "database_url": through(settings.database_url, proxy),
        "nomination_url": nowhere, "training_url": nowhere, "progression_url": nowhere, "reporting_url": nowhere,
    })
    async with running_app(create_app, portal_settings, headers={}) as client:
        yield client


async def signed_in_cookie(client: httpx.AsyncClient, idp: Idp) -> dict[str, str]:
    """A session as the callback would open it, for a trainee signed in at the test provider."""
    token = idp.user_token("trainee", staff_id=STAFF_ID)
    now = datetime.now(UTC)
    cookie = await PostgresSessionStore(pool_of(client)).open(
        Caller(role=Role.TRAINEE, staff_id=STAFF_ID, subject=f"test-trainee---{STAFF_ID}"),
        Tokens(token, None, None, now + timedelta(minutes=10)), now, timedelta(minutes=30), timedelta(hours=10),
    )
    return {SESSION_COOKIE: cookie}


async def test_a_page_whose_service_is_down_answers_503_with_retry_after(portal: httpx.AsyncClient, idp: Idp) -> None:
    cookies = await signed_in_cookie(portal, idp)
    response = await portal.get("/", cookies=cookies)
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert "しばらくしてからもう一度お試しください" in response.text


async def test_a_page_while_the_portal_database_is_cut_off_answers_503_then_recovers(
    portal: httpx.AsyncClient, proxy: CuttableProxy, idp: Idp
) -> None:
    cookies = await signed_in_cookie(portal, idp)
    await proxy.cut()
    response = await portal.get("/me", cookies=cookies)
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert "database is unavailable" in response.text  # the session lookup failed, not a service call
    await proxy.restore()
    for _ in range(50):  # a sign-in under way is written to the database again once the link is back
        recovered = await portal.get("/auth/login")
        if recovered.status_code == 303:
            break
        await asyncio.sleep(0.2)
    assert recovered.status_code == 303
    assert recovered.headers["location"].startswith(idp.issuer)
