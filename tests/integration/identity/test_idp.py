"""The local OpenID Connect provider (deploy/idp) gives real, verifiable tokens: discovery, JWKS, client
credentials for programs, the authorization code flow with PKCE for people."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import KeySet

from dx_tools.idp import demo_users
from tests.support.idp import (
    DEMO_PASSWORD,
    LOADER,
    REPORTS_READER,
    SHORT_LIVED,
    TEST_CLIENT,
    Idp,
    SignInRefused,
    private_idp,
)
from tests.support.system import free_port

pytestmark = pytest.mark.integration

SIGNED_OUT_URI = "http://127.0.0.1/test-signed-out"


def verified(idp: Idp, token: str, now: int | None = None) -> dict[str, Any]:
    """The token's claims after checking its signature against the JWKS and iss, aud, exp (joserfc)."""
    decoded = jwt.decode(token, KeySet.import_key_set(idp.jwks()), algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": idp.issuer},
        aud={"essential": True, "value": idp.audience},
        exp={"essential": True},
    ).validate(decoded.claims)
    assert decoded.header["alg"] == "RS256"
    return dict(decoded.claims)


def test_discovery_names_the_issuer_and_the_code_flow_with_pkce(idp: Idp) -> None:
    discovery = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == idp.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(discovery["grant_types_supported"])
    assert discovery["end_session_endpoint"].startswith(idp.issuer)
    assert "dx.fy.close" in discovery["scopes_supported"]


def test_the_jwks_holds_only_public_rsa_signing_keys(idp: Idp) -> None:
    keys = idp.jwks()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert "d" not in key and "p" not in key  # no private part published


def test_a_program_gets_a_verifiable_token_with_its_role_and_scopes(idp: Idp) -> None:
    token = idp.client_token(*LOADER, scopes=["dx.roster.import", "dx.fy.close"])
    claims = verified(idp, token)
    assert claims["aud"] == "dx-talent"
    assert claims["sub"] == "dx-loader"
    assert claims["client_id"] == "dx-loader"
    assert claims["dx_role"] == "dx_office"
    assert set(claims["scope"].split()) == {"dx.roster.import", "dx.fy.close"}


def test_a_program_cannot_get_a_scope_it_is_not_registered_for(idp: Idp) -> None:
    response = httpx.post(
        idp.discovery()["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "dx.fy.close"},
        auth=REPORTS_READER,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    claims = verified(idp, idp.client_token(*REPORTS_READER, scopes=["dx.reports.read"]))
    assert claims["dx_role"] == "info_policy"


def test_a_wrong_client_secret_gets_no_token(idp: Idp) -> None:
    response = httpx.post(
        idp.discovery()["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "dx.ops"},
        auth=(LOADER[0], "not-the-secret"),
    )
    assert response.status_code == 401
    assert "access_token" not in response.text


def test_a_demo_trainee_signs_in_with_the_code_flow_and_gets_their_staff_id(idp: Idp) -> None:
    trainee = next(user for user in demo_users() if user.username == "trainee1")
    claims = verified(idp, idp.demo_user_token("trainee1", scopes=["dx.progress.read"]))
    assert claims["sub"] == trainee.sub
    assert claims["client_id"] == TEST_CLIENT
    assert claims["dx_role"] == "trainee"
    assert claims["dx_staff_id"] == trainee.dx_staff_id
    assert claims["dx_department"] == trainee.dx_department
    assert claims["scope"] == "dx.progress.read"
    assert "name" not in claims  # no personal names in access tokens


def test_a_department_head_token_carries_the_department(idp: Idp) -> None:
    head = next(user for user in demo_users() if user.username == "dept.head1")
    claims = verified(idp, idp.demo_user_token("dept.head1"))
    assert (claims["dx_role"], claims["dx_department"]) == ("department", head.dx_department)


def test_test_mode_signs_in_any_role_department_and_person(idp: Idp) -> None:
    claims = verified(idp, idp.user_token("department", department="D42"))
    assert claims["sub"] == "test-department-D42--"
    assert claims["dx_role"] == "department"
    assert claims["dx_department"] == "D42"
    assert "dx_staff_id" not in claims
    trainee = verified(idp, idp.user_token("trainee", department="D1", staff_id="S7", scopes=["dx.progress.read"]))
    assert (trainee["dx_staff_id"], trainee["scope"]) == ("S7", "dx.progress.read")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(idp: Idp) -> None:
    with pytest.raises(SignInRefused):
        idp.sign_in("trainee1", "not-the-password")
    with pytest.raises(SignInRefused):
        idp.sign_in("nobody", "not-the-password")
    with pytest.raises(SignInRefused):
        idp.sign_in("test:dx_office:-:-", "not-the-test-password")


def test_the_login_page_names_no_wrong_part_and_runs_no_script(idp: Idp) -> None:
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(
            idp.discovery()["authorization_endpoint"],
            params={
                "client_id": TEST_CLIENT,
                "response_type": "code",
                "redirect_uri": "http://127.0.0.1/test-callback",
                "scope": "openid dx.progress.read",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200
        assert "<script" not in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        cross_site = browser.post(
            f"{page.url}/login",
            data={"username": "trainee1", "password": DEMO_PASSWORD},
            headers={"Origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403
        refused = browser.post(f"{page.url}/login", data={"username": "trainee1", "password": "wrong"})
        assert refused.status_code == 401
        assert "ユーザー名またはパスワードが正しくありません" in refused.text


def test_repeated_wrong_passwords_lock_the_user_name_for_a_while(idp: Idp) -> None:
    # a test-mode name no other test uses, so the shared provider's demo users stay usable
    name = "test:trainee:-:LOCKOUT"
    for _ in range(10):
        with pytest.raises(SignInRefused):
            idp.sign_in(name, "guess")
    with pytest.raises(SignInRefused):
        idp.sign_in(name, idp.test_password)
    # other names are not affected
    assert (
        verified(idp, idp.sign_in("test:trainee:-:OTHER", idp.test_password)["access_token"])["dx_staff_id"] == "OTHER"
    )


def test_the_code_flow_requires_pkce(idp: Idp) -> None:
    response = httpx.get(
        idp.discovery()["authorization_endpoint"],
        params={
            "client_id": TEST_CLIENT,
            "response_type": "code",
            "redirect_uri": "http://127.0.0.1/test-callback",
            "scope": "openid",
        },
    )
    assert response.status_code == 303
    assert "error=invalid_request" in response.headers["location"]
    assert "PKCE" in response.headers["location"]


def test_a_short_lived_token_expires(idp: Idp) -> None:
    token = idp.client_token(*SHORT_LIVED, scopes=["dx.ops"])
    claims = verified(idp, token)
    assert claims["exp"] - claims["iat"] == 2
    time.sleep(3)
    with pytest.raises(ExpiredTokenError):
        verified(idp, token)


def test_a_person_can_refresh_and_sign_out(idp: Idp) -> None:
    with httpx.Client(follow_redirects=False) as browser:
        tokens = idp.sign_in("trainee2", DEMO_PASSWORD, scopes=["dx.progress.read"], browser=browser)
        assert tokens["refresh_token"]
        refreshed = httpx.post(
            idp.discovery()["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": TEST_CLIENT},
        )
        assert refreshed.status_code == 200, refreshed.text
        claims = verified(idp, refreshed.json()["access_token"])
        assert (claims["dx_role"], claims["scope"]) == ("trainee", "dx.progress.read")

        # Signed in: a second authorization needs no password (the provider's session).
        again = idp.sign_in("trainee2", "not-asked-for", scopes=["dx.progress.read"], browser=browser)
        assert verified(idp, again["access_token"])["sub"] == claims["sub"]

        # RP-initiated logout: confirmation page (no script), then back to the registered URI.
        page = browser.get(
            idp.discovery()["end_session_endpoint"],
            params={"id_token_hint": again["id_token"], "post_logout_redirect_uri": SIGNED_OUT_URI},
        )
        assert page.status_code == 200
        assert "<script" not in page.text
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S)
        assert form is not None
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
        done = browser.post(urljoin(str(page.url), form.group(1)), data={**fields, "logout": "yes"})
        assert done.status_code in (302, 303)
        assert done.headers["location"].startswith(SIGNED_OUT_URI)

        # Signed out: the next authorization asks for the password again.
        with pytest.raises(SignInRefused):
            idp.sign_in("trainee2", "not-the-password", browser=browser)


def test_tokens_stay_valid_when_the_provider_restarts(tmp_path: Path) -> None:
    port = free_port()
    with private_idp(data_dir=tmp_path, port=port) as first:
        token = first.client_token(*LOADER, scopes=["dx.ops"])
        keys = first.jwks()
    with private_idp(data_dir=tmp_path, port=port) as second:
        assert second.jwks() == keys
        assert verified(second, token)["dx_role"] == "dx_office"
