"""Fixtures shared by every test: isolated real PostgreSQL and RabbitMQ, and settings bound to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from dx_shared.settings import Settings
from tests.support.identity import use_provider
from tests.support.idp import Idp, private_idp
from tests.support.infra import Servers, create_database, drop_database, unique_name

TEST_WEBHOOK_SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXRoZS1keC10YWxlbnQtc3VpdGU="


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    found = Servers()
    yield found
    found.close()


@pytest.fixture(scope="session")
def idp() -> Iterator[Idp]:
    """The OpenID Connect provider (deploy/idp) in test mode: a private one, or DX_TEST_IDP_URL's.
    Test clients act as its signed-in people (tests.support.identity)."""
    with private_idp() as provider:
        use_provider(provider)
        yield provider


@pytest.fixture
async def database_url(servers: Servers) -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    name = unique_name("dx_t")
    url = await create_database(servers.database_url, name)
    yield url
    await drop_database(servers.database_url, name)


@pytest.fixture
def amqp_url(servers: Servers) -> str:
    return servers.amqp_url


@pytest.fixture
def bus_names() -> dict[str, str]:
    """Exchange and queue names no other test uses."""
    tag = unique_name("t")
    return {
        "exchange": f"dx.events.{tag}",
        "dead_letter_exchange": f"dx.dead-letter.{tag}",
        "queue_prefix": f"{tag}.",
    }


@pytest.fixture
def settings(database_url: str, amqp_url: str, bus_names: dict[str, str], idp: Idp) -> Settings:
    use_provider(idp)
    return Settings(
        database_url=database_url,
        amqp_url=amqp_url,
        webhook_secrets=TEST_WEBHOOK_SECRET,
        outbox_poll_interval=0.2,
        log_json=True,
        log_level="WARNING",
        oidc_issuer=idp.issuer,
        oidc_audience=idp.audience,
        nomination_metrics_port=0,
        training_metrics_port=0,
        progression_metrics_port=0,
        reporting_metrics_port=0,
        **bus_names,
    )
