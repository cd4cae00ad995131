"""Verifying OAuth 2.0 access tokens (JWT) from the configured OpenID Connect issuer (CONTRACT.md "Identity").

The signature is checked by joserfc against the issuer's JWKS (from its discovery document, or
`DX_OIDC_JWKS_URL`), cached and fetched again when a token names a key id the cache does not hold (at most
once per `DX_OIDC_JWKS_MIN_REFRESH_SECONDS`, so a stream of made-up key ids cannot hammer the issuer). Only
asymmetric algorithms are accepted: `none` and the HMAC family (a shared secret) never are. `iss`, `aud`,
`exp` and `nbf` are checked by joserfc's claims registry with a small leeway for clock skew.

Who the caller is comes from claims whose names are settings (`dx_role` here, `roles` on Entra ID).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from dx_shared.roles import Caller, Role
from dx_shared.settings import Settings

ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA", "Ed25519",
)  # fmt: skip

JsonFetcher = Callable[[str], Awaitable[Mapping[str, Any]]]


class TokenRefused(Exception):
    """The token proves nothing: missing, unreadable, badly signed, expired, or not meant for us (401)."""

    def __init__(self, code: str, title_en: str, title_ja: str, reason: str = "") -> None:
        super().__init__(f"{code}: {reason or title_en}")
        self.code = code
        self.title_en = title_en
        self.title_ja = title_ja
        self.reason = reason


class IdentityProviderUnavailable(Exception):
    """The issuer's keys cannot be fetched and none cached fits the token: try again later (503)."""


class RoleMissing(Exception):
    """A genuine token that names no role this system knows, or a role without its department/staff id (403)."""

    def __init__(self, code: str, title_en: str, title_ja: str) -> None:
        super().__init__(code)
        self.code = code
        self.title_en = title_en
        self.title_ja = title_ja


def token_missing() -> TokenRefused:
    return TokenRefused(
        "TOKEN_MISSING", "An access token is required (Authorization: Bearer)", "アクセストークンが必要です"
    )


def _invalid(reason: str) -> TokenRefused:
    return TokenRefused("TOKEN_INVALID", "The access token is not valid", "アクセストークンが無効です", reason)


def _expired() -> TokenRefused:
    return TokenRefused("TOKEN_EXPIRED", "The access token has expired", "アクセストークンの有効期限が切れています")


async def fetch_json(url: str, timeout: float = 5.0) -> Mapping[str, Any]:
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document: Mapping[str, Any] = response.json()
        return document


class JwksCache:
    """The issuer's public keys, fetched without blocking the event loop, kept until a token names a key
    id they lack (the issuer rotated its keys), and then fetched again at most once per interval."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        fetch: JsonFetcher,
        min_refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._jwks_url = jwks_url
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key_for(self, kid: str | None) -> Any:
        cached = self._find(kid)
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._find(kid)
            if cached is not None:
                return cached
            if self._keys is not None and not self._may_refresh():
                raise _invalid(f"unknown key id {kid!r}")
            await self._refresh()
        found = self._find(kid)
        if found is None:
            raise _invalid(f"unknown key id {kid!r}")
        return found

    def _find(self, kid: str | None) -> Any:
        if self._keys is None:
            return None
        try:
            return self._keys.get_by_kid(kid)
        except JoseError:
            return None

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._min_refresh

    async def _refresh(self) -> None:
        self._fetched_at = self._clock()
        try:
            url = self._jwks_url or await self._jwks_uri_from_discovery()
            document = await self._fetch(url)
            keys = KeySet.import_key_set({"keys": list(document["keys"])})
        except (TimeoutError, httpx.HTTPError, OSError, KeyError, TypeError, ValueError, JoseError) as exc:
            if self._keys is None:
                self._fetched_at = None
            raise IdentityProviderUnavailable(f"{type(exc).__name__}") from exc
        self.fetches += 1
        self._keys = keys

    async def _jwks_uri_from_discovery(self) -> str:
        discovery = await self._fetch(f"{self._issuer}/.well-known/openid-configuration")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ValueError("the discovery document names no jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri


@dataclass(frozen=True)
class ClaimNames:
    role: str = "dx_role"
    department: str = "dx_department"
    staff_id: str = "dx_staff_id"
    scope: str = "scope"

    @classmethod
    def of(cls, settings: Settings) -> ClaimNames:
        return cls(
            role=settings.oidc_role_claim,
            department=settings.oidc_department_claim,
            staff_id=settings.oidc_staff_id_claim,
            scope=settings.oidc_scope_claim,
        )


class TokenVerifier:
    """Turns a bearer token into its verified claims, or refuses it."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: JwksCache,
        leeway_seconds: int = 30,
        now: Callable[[], int] | None = None,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = keys
        self._leeway = leeway_seconds
        self._now = now

    @classmethod
    def from_settings(cls, settings: Settings, fetch: JsonFetcher | None = None) -> TokenVerifier:
        async def default_fetch(url: str) -> Mapping[str, Any]:
            return await fetch_json(url, settings.oidc_fetch_timeout_seconds)

        keys = JwksCache(
            issuer=settings.oidc_issuer,
            jwks_url=settings.oidc_jwks_url,
            fetch=fetch or default_fetch,
            min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
        )
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            keys=keys,
            leeway_seconds=settings.oidc_leeway_seconds,
        )

    @property
    def keys(self) -> JwksCache:
        return self._keys

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise _invalid(f"unreadable: {type(exc).__name__}") from exc
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise _invalid(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        key = await self._keys.key_for(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, key, algorithms=list(ASYMMETRIC_ALGORITHMS))
            registry = jwt.JWTClaimsRegistry(
                now=self._now,
                leeway=self._leeway,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
            )
            registry.validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise _expired() from exc
        except (JoseError, ValueError) as exc:
            raise _invalid(f"{type(exc).__name__}: {exc}") from exc
        return decoded.claims


def caller_from_claims(claims: Mapping[str, Any], names: ClaimNames) -> Caller:
    """Who the verified token speaks for: role, department and staff id from claims, never from headers."""
    role = _role_of(claims.get(names.role))
    if role is None:
        raise RoleMissing(
            "ROLE_MISSING",
            "The access token carries no role this system knows",
            "アクセストークンに有効な役割が含まれていません",
        )
    department = _text(claims.get(names.department))
    staff_id = _text(claims.get(names.staff_id))
    if role is Role.DEPARTMENT and department is None:
        raise RoleMissing(
            "DEPARTMENT_MISSING",
            "A department head's token must carry the department code",
            "所属の権限には所属コードが必要です",
        )
    if role is Role.TRAINEE and staff_id is None:
        raise RoleMissing(
            "STAFF_ID_MISSING",
            "A trainee's token must carry the staff id",
            "研修受講者の権限には職員番号が必要です",
        )
    client_id = _text(claims.get("client_id")) or _text(claims.get("azp"))
    return Caller(
        role=role,
        department_code=department,
        staff_id=staff_id,
        subject=_text(claims.get("sub")) or client_id,
        scopes=_scopes_of(claims.get(names.scope)),
        client_id=client_id,
    )


def _role_of(value: object) -> Role | None:
    # Entra ID puts app roles in a list (`roles`); a person holding several is taken at the first known one.
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if isinstance(candidate, str):
            try:
                return Role(candidate.strip().lower())
            except ValueError:
                continue
    return None


def _scopes_of(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _text(value: object) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None
