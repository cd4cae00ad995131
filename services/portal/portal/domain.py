"""What the portal decides by itself (pure): session lifetimes, same-origin and CSRF checks, the security
headers, and which parts of the front a person is shown. Policy rules stay in the services: a page only
hides what the service would refuse anyway."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from dx_shared.roles import OFFICES, Caller, Role

SESSION_COOKIE = "dx_portal_session"
SIGN_IN_COOKIE = "dx_portal_sign_in"
SIGN_IN_LIFETIME = timedelta(minutes=10)
# Refresh the access token a little before it expires, so a page's calls never carry a stale one.
REFRESH_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionTimes:
    created_at: datetime
    last_seen_at: datetime
    idle_timeout: timedelta
    absolute_timeout: timedelta


def session_expired(times: SessionTimes, now: datetime) -> bool:
    return now >= times.created_at + times.absolute_timeout or now >= times.last_seen_at + times.idle_timeout


def access_token_due_for_refresh(expires_at: datetime, now: datetime) -> bool:
    return now >= expires_at - REFRESH_MARGIN


def origin_of(url: str) -> str:
    """scheme://host[:port] in lower case, as browsers send it in the Origin header."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_same_origin_request(origin: str | None, referer: str | None, own_origin: str) -> bool:
    """A state-changing request must say it comes from our own pages: Origin, or failing that Referer."""
    if origin and origin != "null":
        return origin.lower().rstrip("/") == own_origin
    if referer:
        return origin_of(referer) == own_origin
    return False


def csrf_token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def cookie_is_secure(portal_url: str) -> bool:
    return urlsplit(portal_url).scheme.lower() == "https"


def safe_next_path(path: str | None) -> str:
    """Where to go after signing in: only a path on this site (never //host or a full URL)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


# Same-origin requests keep a real Origin (the CSRF check needs it); other sites learn only our origin.
REFERRER_POLICY = "strict-origin-when-cross-origin"


def content_security_policy(issuer: str) -> str:
    # form-action names the issuer: signing out posts here and the browser is then sent to its
    # end-session endpoint, which Chromium checks against form-action.
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        f"frame-ancestors 'none'; base-uri 'none'; form-action 'self' {origin_of(issuer)}"
    )


@dataclass(frozen=True)
class Navigation:
    """The parts of the front a person is offered (the services still decide every request)."""

    programme_dashboard: bool
    pipeline: bool
    my_progress: bool
    self_application: bool
    department: bool
    close_fiscal_year: bool
    reports: bool = False
    department_progress: bool = False
    office_work: bool = False
    audit_trail: bool = False


def navigation_for(caller: Caller) -> Navigation:
    return Navigation(
        programme_dashboard=caller.role is not Role.TRAINEE,
        pipeline=caller.sees_everything,
        my_progress=caller.staff_id is not None,
        self_application=caller.role is Role.TRAINEE and caller.staff_id is not None,
        department=caller.role is Role.DEPARTMENT and caller.department_code is not None,
        close_fiscal_year=caller.role is Role.DX_OFFICE,
        reports=caller.role is not Role.TRAINEE,
        department_progress=caller.role is Role.DEPARTMENT and caller.department_code is not None,
        office_work=caller.role in OFFICES,
        audit_trail=caller.sees_everything,
    )


def is_office(caller: Caller) -> bool:
    return caller.role in OFFICES
