"""The portal's own rules: session lifetimes, same-origin posts, CSRF tokens, cookie flags, navigation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dx_shared.roles import Caller, Role
from portal.domain import (
    SessionTimes,
    access_token_due_for_refresh,
    content_security_policy,
    cookie_is_secure,
    csrf_token_matches,
    is_same_origin_request,
    navigation_for,
    safe_next_path,
    session_expired,
)

NOON = datetime(2026, 12, 2, 12, tzinfo=UTC)
OWN = "https://portal.example.jp"


def times(created_hours_ago: float, seen_minutes_ago: float) -> SessionTimes:
    return SessionTimes(NOON - timedelta(hours=created_hours_ago), NOON - timedelta(minutes=seen_minutes_ago),
                        idle_timeout=timedelta(minutes=30), absolute_timeout=timedelta(hours=10))


def test_a_session_used_recently_within_its_lifetime_holds() -> None:
    assert not session_expired(times(9, 29), NOON)


def test_a_session_left_idle_too_long_ends() -> None:
    assert session_expired(times(1, 30), NOON)


def test_a_session_ends_at_its_absolute_lifetime_however_busy() -> None:
    assert session_expired(times(10, 0), NOON)


def test_an_access_token_is_refreshed_a_minute_before_it_expires() -> None:
    assert not access_token_due_for_refresh(NOON + timedelta(minutes=2), NOON)
    assert access_token_due_for_refresh(NOON + timedelta(seconds=59), NOON)


def test_a_post_counts_as_ours_only_with_our_origin_or_failing_that_our_referer() -> None:
    assert is_same_origin_request(OWN, None, OWN)
    assert is_same_origin_request(None, f"{OWN}/apply", OWN)
    assert not is_same_origin_request("https://evil.example", f"{OWN}/apply", OWN)
    assert not is_same_origin_request(None, "https://evil.example/x", OWN)
    assert not is_same_origin_request("null", None, OWN)
    assert not is_same_origin_request(None, None, OWN)
    assert not is_same_origin_request("https://portal.example.jp:8443", None, OWN)


def test_a_csrf_token_must_be_present_and_equal() -> None:
    assert csrf_token_matches("abc", "abc")
    assert not csrf_token_matches("abc", "abd")
    assert not csrf_token_matches("abc", "")
    assert not csrf_token_matches("abc", None)


def test_the_cookie_is_secure_exactly_when_the_portal_is_served_over_https() -> None:
    assert cookie_is_secure("https://portal.example.jp")
    assert not cookie_is_secure("http://127.0.0.1:8100")


def test_after_sign_in_only_a_path_on_this_site_is_followed() -> None:
    assert safe_next_path("/me?x=1") == "/me?x=1"
    for hostile in ("https://evil.example/", "//evil.example", "/\\evil.example", None, ""):
        assert safe_next_path(hostile) == "/"


def test_forms_may_lead_only_to_the_portal_and_the_issuer() -> None:
    policy = content_security_policy("https://idp.example.jp/realms/dx")
    assert policy.endswith("form-action 'self' https://idp.example.jp")


def test_a_trainee_is_offered_their_own_pages_and_nothing_of_the_programme() -> None:
    nav = navigation_for(Caller(role=Role.TRAINEE, staff_id="2600001"))
    assert (nav.programme_dashboard, nav.pipeline, nav.department, nav.close_fiscal_year) == (False, False, False, False)
    assert nav.self_application and nav.my_progress


def test_a_department_head_gets_the_department_page_but_no_pipeline() -> None:
    nav = navigation_for(Caller(role=Role.DEPARTMENT, department_code="100100"))
    assert nav.department and nav.programme_dashboard
    assert not nav.pipeline and not nav.close_fiscal_year and not nav.self_application


def test_only_the_dx_office_is_offered_closing_a_fiscal_year() -> None:
    assert navigation_for(Caller(role=Role.DX_OFFICE)).close_fiscal_year
    assert not navigation_for(Caller(role=Role.HR_OFFICE)).close_fiscal_year
    assert navigation_for(Caller(role=Role.INFO_POLICY)).pipeline
