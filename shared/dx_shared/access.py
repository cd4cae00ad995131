"""Who is asking (POLICY.md §5 各部門の役割), proven by an OAuth 2.0 access token (CONTRACT.md "Identity").

Deny by default: `AuthenticationMiddleware` refuses every request outside `OPEN_PATHS` that does not carry
a valid `Authorization: Bearer` token from the configured issuer (401 with `WWW-Authenticate`, RFC 6750),
before any route, body parsing or database work, and stores the verified caller in `request.state.caller`.
Each route then names the scope it needs (`requires_scope`) and keeps its role rules (`require`).
No request header other than the token says who the caller is, and no caller is ever assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from dx_shared.auth import (
    ClaimNames,
    IdentityProviderUnavailable,
    RoleMissing,
    TokenRefused,
    TokenVerifier,
    caller_from_claims,
    token_missing,
)
from dx_shared.logging import get_logger
from dx_shared.problems import ProblemError, problem_response
from dx_shared.roles import ROLE_LABELS, Caller, Role

log = get_logger(__name__)

REALM = "dx-talent"
RETRY_AFTER_SECONDS = 5

# Operations probes and the e-learning webhook (it proves itself with its Standard Webhooks signature).
# /docs and /openapi.json exist only in development mode (otherwise they answer 404).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/webhooks/elearning", "/openapi.json", "/docs"})
OPEN_PREFIXES = ("/docs/",)

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An OAuth 2.0 access token (JWT) from the configured OpenID Connect issuer; the role, "
    "department and staff id are its claims, the scopes its `scope` claim.",
)


def refused(caller: Caller, action_en: str, action_ja: str) -> ProblemError:
    return ProblemError(
        status=403,
        code="ROLE_NOT_PERMITTED",
        title_en=f"Your role ({caller.role.value}) may not {action_en}",
        title_ja=f"この操作（{action_ja}）は{ROLE_LABELS[caller.role]}の権限ではできません",
        role=caller.role.value,
    )


def require(caller: Caller, allowed: frozenset[Role], action_en: str, action_ja: str) -> None:
    if caller.role not in allowed:
        raise refused(caller, action_en, action_ja)


def scope_missing(scope: str) -> ProblemError:
    return ProblemError(
        status=403,
        code="SCOPE_MISSING",
        title_en=f"The access token lacks the scope {scope}",
        title_ja=f"アクセストークンにこの操作のスコープ（{scope}）がありません",
        scope=scope,
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'},
    )


def unauthenticated(refusal: TokenRefused) -> ProblemError:
    # RFC 6750 §3.1: a request with no credentials gets the challenge without an error code.
    challenge = f'Bearer realm="{REALM}"'
    if refusal.code != "TOKEN_MISSING":
        challenge += ', error="invalid_token"'
    return ProblemError(
        status=401,
        code=refusal.code,
        title_en=refusal.title_en,
        title_ja=refusal.title_ja,
        headers={"WWW-Authenticate": challenge},
    )


def role_missing(error: RoleMissing) -> ProblemError:
    return ProblemError(status=403, code=error.code, title_en=error.title_en, title_ja=error.title_ja)


def identity_provider_unavailable() -> ProblemError:
    return ProblemError(
        status=503,
        code="IDENTITY_PROVIDER_UNAVAILABLE",
        title_en="The identity provider's keys cannot be fetched; nothing was recorded, please retry",
        title_ja="認証基盤の鍵を取得できません。何も記録されていません。再試行してください",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise token_missing()
    return token.strip()


async def authenticate(authorization: str | None, verifier: TokenVerifier, names: ClaimNames) -> Caller:
    """The caller a request's Authorization header proves, or the ProblemError that refuses it."""
    try:
        claims = await verifier.verify(bearer_token(authorization))
        return caller_from_claims(claims, names)
    except TokenRefused as refusal:
        log.info("token_refused", code=refusal.code, reason=refusal.reason)
        raise unauthenticated(refusal) from refusal
    except RoleMissing as error:
        log.info("token_without_role", code=error.code)
        raise role_missing(error) from error
    except IdentityProviderUnavailable as exc:
        log.warning("identity_provider_unavailable", error=str(exc))
        raise identity_provider_unavailable() from exc


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class AuthenticationMiddleware:
    """Plain ASGI: no request reaches a route (or a 404/405) without a verified caller, except OPEN_PATHS."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, names: ClaimNames) -> None:
        self._app = app
        self._verifier = verifier
        self._names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope.get("path", "")):
            await self._app(scope, receive, send)
            return
        try:
            caller = await authenticate(Headers(scope=scope).get("authorization"), self._verifier, self._names)
        except ProblemError as problem:
            await problem_response(problem, scope.get("path"))(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self._app(scope, receive, send)


async def authenticated_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        # Only reachable for a route outside the middleware's reach (an OPEN_PATHS route asking for a
        # caller): refuse rather than assume anyone.
        raise unauthenticated(token_missing())
    return caller


CallerDep = Annotated[Caller, Depends(authenticated_caller)]


def requires_scope(scope: str) -> Any:
    """A route dependency: the verified caller's token must carry `scope` (403 SCOPE_MISSING)."""

    async def caller_with_scope(caller: CallerDep) -> Caller:
        if not caller.has_scope(scope):
            raise scope_missing(scope)
        return caller

    caller_with_scope.required_scope = scope  # type: ignore[attr-defined]
    return Depends(caller_with_scope)


def required_scope_of(dependency: Callable[..., Any]) -> str | None:
    """The scope a `requires_scope` dependency checks (for tests that walk every route)."""
    scope: str | None = getattr(dependency, "required_scope", None)
    return scope
