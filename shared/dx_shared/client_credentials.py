"""Programs (the office CLI, the demo loader) get access tokens by the client-credentials grant.

The token endpoint is `DX_OIDC_TOKEN_URL` when set (inside docker compose a container does not reach the
issuer's public address), else the one in the issuer's discovery document; the client id and secret
default to the loader's (`DX_LOADER_CLIENT_ID`, `DX_LOADER_CLIENT_SECRET`).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from dx_shared.roles import Scope
from dx_shared.settings import Settings

ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)


class TokenNotGranted(Exception):
    """The identity provider refused the client (wrong secret, unknown client, scope not allowed)."""


def _discovery_url(settings: Settings) -> str:
    return f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"


def _grant(
    settings: Settings, scopes: Iterable[str], client_id: str | None, secret: str | None
) -> tuple[dict[str, str], tuple[str, str]]:
    return (
        {"grant_type": "client_credentials", "scope": " ".join(scopes)},
        (client_id or settings.loader_client_id, secret or settings.loader_client_secret),
    )


def _token_of(response: httpx.Response) -> str:
    if response.status_code != 200:
        raise TokenNotGranted(f"{response.status_code}: {response.text[:300]}")
    token: str = response.json()["access_token"]
    return token


def client_token(
    settings: Settings,
    scopes: Iterable[str] = ALL_SCOPES,
    *,
    client_id: str | None = None,
    secret: str | None = None,
) -> str:
    with httpx.Client(timeout=settings.oidc_fetch_timeout_seconds) as http:
        endpoint = settings.oidc_token_url
        if endpoint is None:
            discovery = http.get(_discovery_url(settings))
            discovery.raise_for_status()
            endpoint = str(discovery.json()["token_endpoint"])
        data, auth = _grant(settings, scopes, client_id, secret)
        return _token_of(http.post(endpoint, data=data, auth=auth))


async def client_token_async(
    settings: Settings,
    scopes: Iterable[str] = ALL_SCOPES,
    *,
    client_id: str | None = None,
    secret: str | None = None,
) -> str:
    async with httpx.AsyncClient(timeout=settings.oidc_fetch_timeout_seconds) as http:
        endpoint = settings.oidc_token_url
        if endpoint is None:
            discovery = await http.get(_discovery_url(settings))
            discovery.raise_for_status()
            endpoint = str(discovery.json()["token_endpoint"])
        data, auth = _grant(settings, scopes, client_id, secret)
        return _token_of(await http.post(endpoint, data=data, auth=auth))
