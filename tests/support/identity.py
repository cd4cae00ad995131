"""Access tokens for tests: who a request comes from, proven the way production proves it.

`bearer(role=..., department=..., staff_id=..., scopes=...)` gives the Authorization header of a person
signed in at the test identity provider (the `idp` fixture registers it); tokens are cached until shortly
before they expire, since each one is a real sign-in. `running_app` and `running_system` clients carry a
DX-office person's token (every scope) unless a request passes other headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

from joserfc import jws

from dx_shared.roles import Scope

ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)


class Provider(Protocol):
    issuer: str
    audience: str

    def user_token(
        self, role: str, department: str | None = None, staff_id: str | None = None, scopes: Iterable[str] = ...
    ) -> str: ...

    def client_token(self, client_id: str, secret: str, scopes: Iterable[str]) -> str: ...


_provider: Provider | None = None
_cache: dict[tuple[Any, ...], str] = {}


def use_provider(provider: Provider) -> None:
    global _provider
    if provider is not _provider:
        _cache.clear()
    _provider = provider


def current_provider() -> Provider:
    if _provider is None:
        raise RuntimeError("no identity provider: use the `idp` fixture (or the `settings` fixture, which needs it)")
    return _provider


def _still_fresh(token: str, margin: int = 60) -> bool:
    claims = json.loads(jws.extract_compact(token.encode()).payload or b"{}")
    return int(claims.get("exp", 0)) - margin > time.time()


def token_for(
    role: str = "dx_office",
    department: str | None = None,
    staff_id: str | None = None,
    scopes: Iterable[str] = ALL_SCOPES,
) -> str:
    provider = current_provider()
    key = (id(provider), role, department, staff_id, tuple(sorted(scopes)))
    token = _cache.get(key)
    if token is None or not _still_fresh(token):
        token = provider.user_token(role, department=department, staff_id=staff_id, scopes=tuple(sorted(scopes)))
        _cache[key] = token
    return token


def bearer(
    role: str = "dx_office",
    department: str | None = None,
    staff_id: str | None = None,
    scopes: Iterable[str] = ALL_SCOPES,
) -> dict[str, str]:
    """The Authorization header of a signed-in person with this role (and department / staff id)."""
    return {"Authorization": f"Bearer {token_for(role, department, staff_id, scopes)}"}


def office() -> dict[str, str]:
    return bearer("dx_office")


def head_of(department: str) -> dict[str, str]:
    return bearer("department", department=department)


def trainee(staff_id: str) -> dict[str, str]:
    return bearer("trainee", staff_id=staff_id)


def subject_of(headers: dict[str, str]) -> str:
    """The `sub` claim of the token in an Authorization header (read, not verified: the service verified it)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    subject: str = json.loads(jws.extract_compact(token.encode()).payload or b"{}")["sub"]
    return subject
