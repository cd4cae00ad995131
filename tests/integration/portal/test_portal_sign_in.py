"""Signing in to the portal through the real identity provider, the session cookie, cross-site posts,
the security headers, sign-out, and what each role's pages leave out."""

from __future__ import annotations

import hashlib
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from portal.domain import SESSION_COOKIE
from tests.integration.portal.conftest import (
    COLLEAGUE,
    OTHER_DEPARTMENT,
    OTHER_TRAINEE,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    nominations_of,
)
from tests.support.identity import head_of
from tests.support.idp import Idp
from tests.support.portal import PortalVisit, sign_in, username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def portal_url(system: RunningSystem) -> str:
    return system.url("portal")


def csrf_token_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def session_set_cookie(visit: PortalVisit) -> str:
    for answer in visit.answers:
        for header in answer.headers.get_list("set-cookie"):
            if header.startswith(f"{SESSION_COOKIE}="):
                return header
    raise AssertionError("the portal set no session cookie")


def as_trainee(idp: Idp, system: RunningSystem, staff_id: str = TRAINEE) -> PortalVisit:
    return sign_in(idp, portal_url(system), username_for("trainee", staff_id=staff_id))


def test_signing_in_goes_through_the_provider_and_lands_on_the_portal(idp: Idp, portal_system: RunningSystem) -> None:
    visit = as_trainee(idp, portal_system)
    hosts = {urlsplit(str(answer.url)).port for answer in visit.answers}
    assert urlsplit(idp.issuer).port in hosts, "the sign-in never visited the identity provider"
    home = visit.get("/")
    assert home.status_code == 200
    assert 'data-testid="trainee-home"' in home.text
    assert f'data-testid="signed-in-staff-id">{TRAINEE}<' in home.text


def test_the_session_cookie_holds_only_a_random_id_and_is_http_only_lax_on_the_whole_site(
    idp: Idp, portal_system: RunningSystem
) -> None:
    header = session_set_cookie(as_trainee(idp, portal_system))
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"], "plain-http portal URL: Secure would stop the browser sending it back"
    assert len(morsel.value) >= 40 and "." not in morsel.value, "an opaque id, not a signed or encoded payload"


def test_a_page_without_a_session_sends_the_person_to_sign_in(portal_system: RunningSystem) -> None:
    response = httpx.get(f"{portal_url(portal_system)}/me", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login?next=%2Fme"


def test_every_page_carries_the_security_headers(idp: Idp, portal_system: RunningSystem) -> None:
    visit = as_trainee(idp, portal_system)
    for path in ("/", "/me", "/apply"):
        response = visit.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert f"form-action 'self' {idp.issuer}" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] in ("no-referrer", "strict-origin-when-cross-origin")
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text and "style=" not in response.text


@pytest.mark.parametrize(
    ("origin", "token"),
    [(None, "page"), ("http://evil.example", "page"), ("same", "wrong"), ("same", None)],
    ids=["no-origin", "foreign-origin", "wrong-token", "no-token"],
)
def test_a_cross_site_or_tokenless_application_is_refused_and_records_nothing(
    idp: Idp, portal_system: RunningSystem, origin: str | None, token: str | None
) -> None:
    visit = as_trainee(idp, portal_system, staff_id="2600009")
    data = {"agree": "yes"}
    if token == "page":
        data["csrf_token"] = csrf_token_of(visit.get("/apply"))
    elif token == "wrong":
        data["csrf_token"] = "x" * 43
    response = visit.post_form("/apply", data, origin=origin)
    assert response.status_code == 403
    assert "この送信は受け付けられません" in response.text
    assert nominations_of(portal_system, "2600009") == []


def test_an_application_from_the_portal_page_reaches_nomination_and_a_second_is_refused_in_japanese(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = as_trainee(idp, portal_system)
    token = csrf_token_of(visit.get("/apply"))
    first = visit.post_form("/apply", {"csrf_token": token, "agree": "yes"})
    assert first.status_code == 303, first.text[:500]
    assert [n["slot"] for n in nominations_of(portal_system, TRAINEE)] == ["self"]
    second = visit.post_form("/apply", {"csrf_token": token, "agree": "yes"})
    assert second.status_code == 409
    assert 'data-testid="refusal"' in second.text
    assert len(nominations_of(portal_system, TRAINEE)) == 1


def test_a_trainee_sees_their_own_page_and_no_operator_panel_or_other_department(
    idp: Idp, portal_system: RunningSystem
) -> None:
    home = as_trainee(idp, portal_system).get("/")
    assert home.status_code == 200
    assert 'data-testid="operator-panel"' not in home.text
    assert 'data-testid="missing-panel"' not in home.text
    assert OTHER_DEPARTMENT not in home.text and OTHER_TRAINEE not in home.text
    for office_only in ("/department", "/office/close"):
        assert as_trainee(idp, portal_system).get(office_only).status_code == 403


def test_a_department_head_sees_only_their_department_and_no_operator_panel(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = sign_in(idp, portal_url(portal_system), username_for("department", department=OWN_DEPARTMENT))
    home = visit.get("/")
    assert home.status_code == 200
    assert f'data-testid="department-row-{OWN_DEPARTMENT}"' in home.text
    assert f'data-testid="department-row-{OTHER_DEPARTMENT}"' not in home.text
    assert f'data-testid="missing-department-{OTHER_DEPARTMENT}"' not in home.text
    assert 'data-testid="operator-panel"' not in home.text
    assert visit.get("/department").status_code == 200
    assert visit.get("/office/close").status_code == 403


def test_the_dx_office_sees_the_operator_panel_and_the_closing_checklist(idp: Idp, portal_system: RunningSystem) -> None:
    visit = sign_in(idp, portal_url(portal_system), username_for("dx_office"))
    home = visit.get("/")
    assert 'data-testid="operator-panel"' in home.text
    assert f'data-testid="missing-department-{OWN_DEPARTMENT}"' in home.text
    checklist = visit.get("/office/close")
    assert checklist.status_code == 200
    assert 'data-testid="check-missing"' in checklist.text


def test_signing_out_ends_the_session_and_hands_over_to_the_provider(idp: Idp, portal_system: RunningSystem) -> None:
    visit = as_trainee(idp, portal_system)
    session_id = visit.browser.cookies.get(SESSION_COOKIE)
    assert session_id
    token = csrf_token_of(visit.get("/me"))
    response = visit.post_form("/auth/logout", {"csrf_token": token})
    assert response.status_code == 303
    end_session = idp.discovery()["end_session_endpoint"]
    assert response.headers["location"].startswith(end_session)
    assert "post_logout_redirect_uri=" in response.headers["location"]
    assert any(h.startswith(f'{SESSION_COOKIE}=""') or "Max-Age=0" in h
               for h in response.headers.get_list("set-cookie"))
    replayed = httpx.get(f"{portal_url(portal_system)}/me", cookies={SESSION_COOKIE: session_id},
                         follow_redirects=False)
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/auth/login")


def test_signing_out_from_another_site_is_refused(idp: Idp, portal_system: RunningSystem) -> None:
    visit = as_trainee(idp, portal_system)
    token = csrf_token_of(visit.get("/me"))
    refused = visit.post_form("/auth/logout", {"csrf_token": token}, origin="http://evil.example")
    assert refused.status_code == 403
    assert visit.get("/me").status_code == 200


def test_a_department_head_nominates_is_refused_a_second_recommended_nomination_and_withdraws(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = sign_in(idp, portal_url(portal_system), username_for("department", department=OWN_DEPARTMENT))
    page = visit.get("/department")
    assert 'data-testid="recommended-free"' in page.text
    assert f'data-testid="roster-{COLLEAGUE}"' in page.text and f'data-testid="roster-{TRAINEE}"' in page.text
    assert f'data-testid="roster-{OTHER_TRAINEE}"' not in page.text
    token = csrf_token_of(page)

    nominated = visit.post_form("/department/nominate", {"csrf_token": token, "staff_id": COLLEAGUE})
    assert nominated.status_code == 303, nominated.text[:500]
    held = visit.get("/department")
    assert 'data-testid="recommended-holder"' in held.text and COLLEAGUE in held.text

    second = visit.post_form("/department/nominate", {"csrf_token": token, "staff_id": TRAINEE})
    assert second.status_code == 409
    assert 'data-testid="refusal"' in second.text
    assert [n["staff_id"] for n in nominations_of(portal_system, TRAINEE) if n["slot"] == "recommended"] == []

    nomination_id = next(str(n["nomination_id"]) for n in nominations_of(portal_system, COLLEAGUE))
    withdrawn = visit.post_form(
        "/department/withdraw", {"csrf_token": token, "nomination_id": nomination_id, "reason": "異動のため"}
    )
    assert withdrawn.status_code == 303
    assert [n["status"] for n in nominations_of(portal_system, COLLEAGUE)] == ["withdrawn"]
    assert 'data-testid="recommended-free"' in visit.get("/department").text


def test_the_dx_office_closes_a_fiscal_year_only_after_confirming(idp: Idp, portal_system: RunningSystem) -> None:
    visit = sign_in(idp, portal_url(portal_system), username_for("dx_office"))
    year = str(YEAR - 1)
    token = csrf_token_of(visit.get(f"/office/close?fiscal_year={year}"))
    unconfirmed = visit.post_form("/office/close", {"csrf_token": token, "fiscal_year": year})
    assert unconfirmed.status_code == 422
    closed = visit.post_form("/office/close", {"csrf_token": token, "fiscal_year": year, "confirm": "yes"})
    assert closed.status_code == 200 and 'data-testid="closed"' in closed.text
    again = visit.post_form("/office/close", {"csrf_token": token, "fiscal_year": year, "confirm": "yes"})
    assert again.status_code == 409
    assert "この年度はすでに締められています" in again.text


def test_the_roster_of_another_department_is_refused_to_a_department_head(portal_system: RunningSystem) -> None:
    own = httpx.get(portal_system.url("nomination", f"/api/v1/departments/{OWN_DEPARTMENT}/staff"),
                    params={"fiscal_year": YEAR}, headers=head_of(OWN_DEPARTMENT), timeout=15)
    assert own.status_code == 200
    assert {person["staff_id"] for person in own.json()} == {TRAINEE, COLLEAGUE}
    other = httpx.get(portal_system.url("nomination", f"/api/v1/departments/{OTHER_DEPARTMENT}/staff"),
                      params={"fiscal_year": YEAR}, headers=head_of(OWN_DEPARTMENT), timeout=15)
    assert other.status_code == 403


def test_a_nominated_trainee_sees_their_stage_and_why(idp: Idp, portal_system: RunningSystem) -> None:
    visit = as_trainee(idp, portal_system, staff_id=OTHER_TRAINEE)
    deadline = time.monotonic() + 30
    while f'data-testid="explanation-{YEAR}"' not in (page := visit.get("/me")).text:
        assert time.monotonic() < deadline, "progression's decision never reached the trainee's page"
        time.sleep(0.5)
    assert f'data-testid="trainee-year-{YEAR}"' in page.text
    assert "業務効率化" in page.text


async def test_an_access_token_about_to_expire_is_refreshed_and_the_person_stays_signed_in(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = as_trainee(idp, portal_system)
    key = hashlib.sha256(str(visit.browser.cookies.get(SESSION_COOKIE)).encode()).hexdigest()
    conn = await asyncpg.connect(portal_system.settings.database_url)
    try:
        before = await conn.fetchval("SELECT access_token FROM portal.sessions WHERE id_hash = $1", key)
        assert before
        await conn.execute(
            "UPDATE portal.sessions SET access_expires_at = now() - interval '1 minute' WHERE id_hash = $1", key
        )
        page = visit.get("/me")
        assert page.status_code == 200 and f'data-testid="signed-in-staff-id">{TRAINEE}<' in page.text
        after = await conn.fetchrow(
            "SELECT access_token, access_expires_at > now() AS fresh FROM portal.sessions WHERE id_hash = $1", key
        )
    finally:
        await conn.close()
    assert after is not None and after["fresh"] and after["access_token"] != before, "a new, unexpired token"
