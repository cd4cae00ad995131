"""Programs (the office CLI, the demo loader) get access tokens by the client-credentials grant.

The token endpoint comes from the issuer's discovery document; the client id and secret from settings
(`DX_LOADER_CLIENT_ID`, `DX_LOADER_CLIENT_SECRET`).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from dx_shared.roles import Scope
from dx_shared.settings import Settings

ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)


class TokenNotGranted(Exception):
    """The identity provider refused the client (wrong secret, unknown client, scope not allowed)."""


def _request(settings: Settings, scopes: Iterable[str]) -> tuple[dict[str, str], tuple[str, str]]:
    return (
        {"grant_type": "client_credentials", "scope": " ".join(scopes)},
        (settings.loader_client_id, settings.loader_client_secret),
    )


def _token_of(response: httpx.Response) -> str:
    if response.status_code != 200:
        raise TokenNotGranted(f"{response.status_code}: {response.text[:300]}")
    token: str = response.json()["access_token"]
    return token


def client_token(settings: Settings, scopes: Iterable[str] = ALL_SCOPES) -> str:
    with httpx.Client(timeout=settings.oidc_fetch_timeout_seconds) as http:
        discovery = http.get(f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration")
        discovery.raise_for_status()
        data, auth = _request(settings, scopes)
        return _token_of(http.post(discovery.json()["token_endpoint"], data=data, auth=auth))


async def client_token_async(settings: Settings, scopes: Iterable[str] = ALL_SCOPES) -> str:
    async with httpx.AsyncClient(timeout=settings.oidc_fetch_timeout_seconds) as http:
        discovery = await http.get(f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration")
        discovery.raise_for_status()
        data, auth = _request(settings, scopes)
        return _token_of(await http.post(discovery.json()["token_endpoint"], data=data, auth=auth))
