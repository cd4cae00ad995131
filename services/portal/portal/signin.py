"""Signing in and out with the OpenID Connect provider: authorization code + PKCE (S256), state and nonce,
the ID token validated by authlib, then the access token verified as the services verify it.

authlib keeps its state, nonce and code verifier in `request.session`; here that is a plain dict that
lives for one request and is stored server-side (`sign_ins`) between /auth/login and the callback, so the
browser only ever holds random ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from httpx import HTTPError

from dx_shared.auth import RoleMissing, TokenRefused
from dx_shared.logging import get_logger
from dx_shared.roles import Scope
from dx_shared.settings import Settings
from portal.domain import SIGN_IN_COOKIE, SIGN_IN_LIFETIME, cookie_is_secure, safe_next_path
from portal.web import (
    Form,
    MaybePerson,
    PageRefused,
    Person,
    now_utc,
    portal_of,
    session_cookie,
    tokens_from,
    verified_caller,
)

log = get_logger(__name__)

router = APIRouter(prefix="/auth", include_in_schema=False)

SCOPES = " ".join(("openid", "profile", *(scope.value for scope in Scope)))


def oauth_client(settings: Settings) -> OAuth:
    oauth = OAuth()
    oauth.register(
        "dx",
        client_id=settings.portal_client_id,
        client_secret=settings.portal_client_secret,
        server_metadata_url=settings.oidc_discovery,
        client_kwargs={
            "scope": SCOPES,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": settings.oidc_fetch_timeout_seconds,
        },
    )
    return oauth


def start_again() -> PageRefused:
    return PageRefused(
        400, "SIGN_IN_EXPIRED",
        "サインインの手続きが期限切れか、見つかりません。もう一度サインインしてください。",
        "This sign-in has expired or is unknown; please sign in again.",
    )


@router.get("/login")
async def login(request: Request, person: MaybePerson, next: str | None = None) -> Response:
    portal = portal_of(request)
    next_path = safe_next_path(next)
    if person is not None:
        return RedirectResponse(next_path, status_code=303)
    request.scope["session"] = {}
    try:
        redirect = await portal.oauth.create_client("dx").authorize_redirect(request, portal.callback_url)
    except (HTTPError, OAuthError, KeyError, ValueError) as exc:
        raise _provider_unavailable() from exc
    sign_in_id = await portal.store.begin_sign_in(request.scope["session"], next_path, now_utc())
    response = RedirectResponse(redirect.headers["location"], status_code=303)
    response.set_cookie(
        SIGN_IN_COOKIE, sign_in_id, max_age=int(SIGN_IN_LIFETIME.total_seconds()), path="/auth/",
        secure=cookie_is_secure(portal.settings.portal_url), httponly=True, samesite="lax",
    )
    return response


@router.get("/callback")
async def callback(request: Request) -> Response:
    portal = portal_of(request)
    sign_in_id = request.cookies.get(SIGN_IN_COOKIE)
    pending = await portal.store.take_sign_in(sign_in_id, now_utc()) if sign_in_id else None
    if pending is None:
        raise start_again()
    state_data, next_path = pending
    if request.query_params.get("error"):
        # The person cancelled at the provider, or it refused: back to the start page, signed out.
        log.info("portal_sign_in_cancelled", error=request.query_params.get("error"))
        return _without_sign_in_cookie(RedirectResponse("/", status_code=303), portal.settings)
    request.scope["session"] = state_data
    try:
        token: dict[str, Any] = await portal.oauth.create_client("dx").authorize_access_token(request)
    except OAuthError as exc:
        log.info("portal_sign_in_refused", error=exc.error)
        raise start_again() from exc
    except (HTTPError, KeyError, ValueError) as exc:
        raise _provider_unavailable() from exc
    now = now_utc()
    try:
        caller = await verified_caller(portal, str(token["access_token"]))
    except TokenRefused as refusal:
        log.warning("portal_access_token_refused", code=refusal.code, reason=refusal.reason)
        raise start_again() from refusal
    except RoleMissing as error:
        raise PageRefused(403, error.code, error.title_ja, error.title_en) from error
    id_token_subject = (token.get("userinfo") or {}).get("sub")
    if id_token_subject is None or id_token_subject != caller.subject:
        log.warning("portal_token_subjects_differ")
        raise start_again()
    settings = portal.settings
    session_id = await portal.store.open(
        caller, tokens_from(token, now), now,
        idle=timedelta(minutes=settings.portal_session_idle_minutes), absolute=timedelta(hours=settings.portal_session_absolute_hours),
    )
    log.info("portal_signed_in", subject=caller.subject, role=caller.role.value)
    response = _without_sign_in_cookie(RedirectResponse(next_path, status_code=303), settings)
    session_cookie(response, settings, session_id)
    return response


@router.post("/logout")
async def logout(request: Request, person: Person, _form: Form) -> Response:
    """Ends the portal session, then RP-initiated logout at the provider, which sends the person back to /."""
    portal = portal_of(request)
    await portal.store.close(person.session.cookie_value)
    log.info("portal_signed_out", subject=person.caller.subject)
    request.scope["session"] = {}
    try:
        logout_url = await portal.oauth.create_client("dx").create_logout_url(
            post_logout_redirect_uri=portal.signed_out_url,
            id_token_hint=person.session.tokens.id_token,
            client_id=portal.settings.portal_client_id,
        )
        location = str(logout_url["url"])
    except (HTTPError, OAuthError, KeyError, ValueError, RuntimeError):
        location = "/"
    response = RedirectResponse(location, status_code=303)
    session_cookie(response, portal.settings, None)
    return response


def _without_sign_in_cookie(response: Response, settings: Settings) -> Response:
    response.delete_cookie(SIGN_IN_COOKIE, path="/auth/", secure=cookie_is_secure(settings.portal_url),
                           httponly=True, samesite="lax")
    return response


def _provider_unavailable() -> PageRefused:
    return PageRefused(
        503, "IDENTITY_PROVIDER_UNAVAILABLE",
        "認証基盤に接続できません。しばらくしてからもう一度お試しください。",
        "The identity provider cannot be reached; please try again shortly.",
    )


