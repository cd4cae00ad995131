"""Who is signed in, the page refusals, and rendering: the pieces every portal route uses.

The person is whoever the stored access token proves, verified on every request exactly as the services
verify it (`dx_shared.auth`); the session row only keeps the tokens. An access token near its expiry is
refreshed with the refresh token; a token the issuer no longer vouches for ends the session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from httpx import HTTPError
from jinja2 import Environment, PackageLoader, select_autoescape

from dx_shared.auth import (
    ClaimNames,
    IdentityProviderUnavailable,
    RoleMissing,
    TokenRefused,
    TokenVerifier,
    caller_from_claims,
)
from dx_shared.calendar import JST, fiscal_year_label_ja
from dx_shared.logging import get_logger
from dx_shared.roles import ROLE_LABELS, Caller
from dx_shared.settings import Settings
from portal.domain import (
    SESSION_COOKIE,
    access_token_due_for_refresh,
    cookie_is_secure,
    csrf_token_matches,
    is_same_origin_request,
    navigation_for,
    origin_of,
)
from portal.services_api import ServiceRefused, ServicesApi, ServiceUnavailable
from portal.sessions import PortalSession, SessionStore, Tokens

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 5

templates = Environment(
    loader=PackageLoader("portal", "templates"), autoescape=select_autoescape(["html"]),
    trim_blocks=True, lstrip_blocks=True,
)


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _bar_width(share: float | None) -> float:
    return 0.0 if share is None else max(0.0, min(share, 1.0)) * 100


def _jst(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(JST).strftime("%Y-%m-%d %H:%M")


templates.filters.update(number=_number, percent=_percent, bar=_bar_width, reiwa=fiscal_year_label_ja, jst=_jst)


@dataclass
class Portal:
    """Everything the routes need, wired once in `portal.main`."""

    settings: Settings
    store: SessionStore
    verifier: TokenVerifier
    claim_names: ClaimNames
    oauth: OAuth
    services: ServicesApi

    @property
    def own_origin(self) -> str:
        return origin_of(self.settings.portal_url)

    @property
    def callback_url(self) -> str:
        return f"{self.settings.portal_url.rstrip('/')}/auth/callback"

    @property
    def signed_out_url(self) -> str:
        return f"{self.settings.portal_url.rstrip('/')}/"


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


@dataclass(frozen=True)
class SignedIn:
    session: PortalSession
    caller: Caller

    @property
    def token(self) -> str:
        return self.session.tokens.access_token


# ---- refusals a page turns into a response ------------------------------------------------------


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageRefused(Exception):
    def __init__(self, status: int, code: str, title_ja: str, title_en: str) -> None:
        super().__init__(code)
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
        self.status = status
        self.code = code
        self.title_ja = title_ja
        self.title_en = title_en


def cross_site_refused() -> PageRefused:
    return PageRefused(
        403, "CROSS_SITE_REQUEST",
        "この送信は受け付けられません。ポータルの画面から操作し直してください（他のサイトからの送信、または画面の有効期限切れ）。",
        "This form post did not come from the portal's own page (or the page has expired); nothing was recorded.",
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def tokens_from(token: dict[str, Any], now: datetime) -> Tokens:
    return Tokens(
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        id_token=token.get("id_token"),
        access_expires_at=now + timedelta(seconds=int(token.get("expires_in") or 300)),
    )


async def verified_caller(portal: Portal, access_token: str) -> Caller:
    """Raises TokenRefused, RoleMissing or IdentityProviderUnavailable as the services would refuse it."""
    claims = await portal.verifier.verify(access_token)
    return caller_from_claims(claims, portal.claim_names)


async def _refreshed(portal: Portal, session: PortalSession, now: datetime) -> PortalSession | None:
    if not session.tokens.refresh_token:
        return None
    client = portal.oauth.create_client("dx")
    try:
        token = await client.fetch_access_token(grant_type="refresh_token", refresh_token=session.tokens.refresh_token)
    except (OAuthError, HTTPError, KeyError, ValueError) as exc:
        log.info("portal_refresh_refused", error=type(exc).__name__)
        return None
    tokens = tokens_from(token, now)
    await portal.store.replace_tokens(session.cookie_value, tokens)
    return PortalSession(**{**session.__dict__, "tokens": tokens})


async def current_person(request: Request) -> SignedIn | None:
    portal = portal_of(request)
    cookie_value = request.cookies.get(SESSION_COOKIE)
    if not cookie_value:
        return None
    now = now_utc()
    session = await portal.store.find(cookie_value, now)
    if session is None:
        return None
    if access_token_due_for_refresh(session.tokens.access_expires_at, now):
        refreshed = await _refreshed(portal, session, now)
        if refreshed is None:
            await portal.store.close(cookie_value)
            return None
        session = refreshed
    try:
        caller = await verified_caller(portal, session.tokens.access_token)
    except TokenRefused:
        await portal.store.close(cookie_value)
        return None
    except RoleMissing as error:
        raise PageRefused(403, error.code, error.title_ja, error.title_en) from error
    return SignedIn(session=session, caller=caller)


async def require_person(request: Request) -> SignedIn:
    person = await current_person(request)
    if person is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return person


MaybePerson = Annotated[SignedIn | None, Depends(current_person)]
Person = Annotated[SignedIn, Depends(require_person)]


async def checked_form(request: Request, person: Person) -> dict[str, str]:
    """A state-changing post: from our own origin, with the session's CSRF token; else 403, nothing done."""
    portal = portal_of(request)
    if not is_same_origin_request(request.headers.get("origin"), request.headers.get("referer"), portal.own_origin):
        log.info("portal_cross_site_post_refused", path=request.url.path)
        raise cross_site_refused()
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not csrf_token_matches(person.session.csrf_token, fields.get("csrf_token")):
        log.info("portal_csrf_token_refused", path=request.url.path)
        raise cross_site_refused()
    return fields


Form = Annotated[dict[str, str], Depends(checked_form)]


# ---- rendering --------------------------------------------------------------------------------------


def page(
    request: Request, template: str, person: SignedIn | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    caller = person.caller if person else None
    body = templates.get_template(template).render(
        person=person,
        caller=caller,
        role_label=ROLE_LABELS[caller.role] if caller else None,
        nav=navigation_for(caller) if caller else None,
        csrf_token=person.session.csrf_token if person else "",
        path=request.url.path,
        generated_at=datetime.now(UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M"),
        **context,
    )
    return HTMLResponse(body, status_code=status_code)


def session_cookie(response: Response, settings: Settings, value: str | None) -> None:
    if value is None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=cookie_is_secure(settings.portal_url),
                               httponly=True, samesite="lax")
        return
    response.set_cookie(SESSION_COOKIE, value, path="/", secure=cookie_is_secure(settings.portal_url),
                        httponly=True, samesite="lax")


def error_page(request: Request, status: int, title_ja: str, title_en: str, code: str,
               person: SignedIn | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    response = page(request, "error.html", person, status_code=status, title_ja=title_ja, title_en=title_en, code=code)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def install_page_handlers(app: Any) -> None:
    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/auth/login?{urlencode({'next': exc.next_path})}", status_code=303)

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        return error_page(request, exc.status, exc.title_ja, exc.title_en, exc.code, headers=exc.headers)

    async def on_service_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceRefused)
        if exc.status == 401:
            # The service no longer accepts the token: sign in again rather than show a broken page.
            return RedirectResponse(f"/auth/login?{urlencode({'next': request.url.path})}", status_code=303)
        return error_page(request, exc.status, exc.title_ja, str(exc.problem.get("title") or ""), exc.code)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("portal_dependency_unavailable", error=str(exc))
        return error_page(
            request, 503, "ただいま処理できません。しばらくしてからもう一度お試しください（何も記録されていません）。",
            "A service is unavailable; nothing was recorded. Please try again shortly.", "SERVICE_UNAVAILABLE",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(PageRefused, on_refused)
    app.add_exception_handler(ServiceRefused, on_service_refused)
    app.add_exception_handler(ServiceUnavailable, on_unavailable)
    app.add_exception_handler(IdentityProviderUnavailable, on_unavailable)
