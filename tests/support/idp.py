"""A private OpenID Connect provider for the tests (deploy/idp, the same one `./dx up` runs).

`private_idp()` starts it on a free port with its own data directory, test mode on, and the demo users;
set DX_TEST_IDP_URL (and DX_TEST_IDP_PASSWORD, the provider's DX_IDP_TEST_PASSWORD) to use one that is
already running in test mode instead. Tokens are got the way real clients get them: client credentials
for programs, the authorization code flow with PKCE through the login form for people.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from dx_tools import idp as dx_idp
from tests.support.system import free_port

ALL_SCOPES: tuple[str, ...] = dx_idp.ALL_SCOPES
DEMO_PASSWORD = dx_idp.DEMO_PASSWORD
TEST_CLIENT = "dx-test"
TEST_REDIRECT_URI = "http://127.0.0.1/test-callback"
# Client-credentials clients and their (development) secrets, from deploy/idp/clients.json.
LOADER = ("dx-loader", "dev-loader-secret-change-me-0123456789abcdef")  # role dx_office, every scope
REPORTS_READER = ("dx-reports-reader", "dev-reports-secret-change-me-0123456789abcdef")  # info_policy, reports
SHORT_LIVED = ("dx-test-short", "dev-test-short-secret-0123456789abcdef")  # dx_office, tokens live 2 s


def bearer(token: str) -> dict[str, str]:
    """The request header that carries an access token."""
    return {"Authorization": f"Bearer {token}"}


class SignInRefused(Exception):
    """The provider's login form refused the user name and password."""


@dataclass
class Idp:
    issuer: str
    test_password: str
    audience: str = dx_idp.DEFAULT_AUDIENCE
    log: Path | None = None
    # The port the portal must listen on for this provider to accept its redirect URIs (None: unknown).
    portal_port: int | None = None
    _cache: dict[tuple[Any, ...], tuple[str, float]] = field(default_factory=dict)

    # -- discovery -------------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return dx_idp.discover(self.issuer)

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.discovery()["jwks_uri"], timeout=5)
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
        return keys

    def env(self) -> dict[str, str]:
        """The settings a service needs to accept this provider's tokens."""
        return {"DX_OIDC_ISSUER": self.issuer, "DX_OIDC_AUDIENCE": self.audience}

    # -- tokens ----------------------------------------------------------------------------------
    def client_token(self, client_id: str, secret: str, scopes: Sequence[str] = ALL_SCOPES) -> str:
        """A client-credentials access token (not cached: each call asks the provider)."""
        response = httpx.post(
            self.discovery()["token_endpoint"],
            data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
            auth=(client_id, secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def user_token(
        self,
        role: str,
        department: str | None = None,
        staff_id: str | None = None,
        scopes: Sequence[str] = ALL_SCOPES,
    ) -> str:
        """An access token for a test person with exactly these claims (test-mode login, real code flow).

        The subject is `test-<role>-<department or ->-<staff id or ->`.
        """
        username = f"test:{role}:{department or '-'}:{staff_id or '-'}"
        return self._cached_sign_in(username, self.test_password, scopes)

    def demo_user_token(self, username: str, scopes: Sequence[str] = ALL_SCOPES) -> str:
        """An access token for a demo user (dx.office, hr.office, info.policy, dept.head1/2, trainee1/2)."""
        return self._cached_sign_in(username, DEMO_PASSWORD, scopes)

    def _cached_sign_in(self, username: str, password: str, scopes: Sequence[str]) -> str:
        key = (username, tuple(sorted(scopes)))
        cached = self._cache.get(key)
        if cached and cached[1] > time.monotonic() + 30:
            return cached[0]
        tokens = self.sign_in(username, password, scopes)
        self._cache[key] = (tokens["access_token"], time.monotonic() + float(tokens["expires_in"]))
        return str(tokens["access_token"])

    def sign_in(
        self,
        username: str,
        password: str,
        scopes: Sequence[str] = ALL_SCOPES,
        client_id: str = TEST_CLIENT,
        browser: httpx.Client | None = None,
    ) -> dict[str, Any]:
        """The authorization code flow with PKCE, as a browser and a public client would do it.

        authorize → login form → (consent, none for first-party clients) → code → token exchange with
        the code verifier. Returns the token response; raises SignInRefused on a refused login. Pass a
        `browser` (httpx.Client without redirects) to keep the provider's session cookies, e.g. to sign out.
        """
        if browser is None:
            with httpx.Client(timeout=10, follow_redirects=False) as own:
                return self.sign_in(username, password, scopes, client_id, own)
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": TEST_REDIRECT_URI,
            "scope": " ".join(("openid", "profile", *scopes)),
            "state": state,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        response = browser.get(self.discovery()["authorization_endpoint"], params=params)
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(TEST_REDIRECT_URI):
                    return self._exchange(browser, location, state, verifier, client_id)
                response = browser.get(location)
            elif response.status_code == 200 and 'name="password"' in response.text:
                action = f"{response.url.copy_with(query=None)}/login"
                response = browser.post(action, data={"username": username, "password": password})
                if response.status_code == 401:
                    raise SignInRefused(username)
            else:
                raise AssertionError(
                    f"unexpected answer in the sign-in flow: {response.status_code} {response.text[:500]}"
                )
        raise AssertionError("the sign-in flow did not reach the redirect URI")

    def _exchange(
        self, browser: httpx.Client, location: str, state: str, verifier: str, client_id: str
    ) -> dict[str, Any]:
        query = parse_qs(urlsplit(location).query)
        if "error" in query:
            raise AssertionError(f"authorization refused: {query}")
        assert query["state"] == [state]
        assert query["iss"] == [self.issuer]
        response = browser.post(
            self.discovery()["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": TEST_REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens


@contextlib.contextmanager
def private_idp(access_token_ttl: int = 3600, data_dir: Path | None = None, port: int | None = None) -> Iterator[Idp]:
    """Starts deploy/idp/server.js on a free port with a temporary data dir, test mode and the demo users.

    With `data_dir` (kept afterwards) and `port`, a test can restart "the same" provider.
    """
    url = os.environ.get("DX_TEST_IDP_URL")
    if url and data_dir is None:
        portal = os.environ.get("DX_TEST_IDP_PORTAL_PORT")
        yield Idp(
            issuer=url.rstrip("/"),
            test_password=os.environ.get("DX_TEST_IDP_PASSWORD", ""),
            portal_port=int(portal) if portal else None,
        )
        return
    dx_idp.ensure_node_modules()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(
            "node is not installed; the tests need it for the identity provider (apt-get install nodejs)"
        )
    keep = data_dir is not None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="dx-idp-"))
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    test_password = secrets.token_urlsafe(24)
    portal_port = free_port()
    portal = f"http://127.0.0.1:{portal_port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    dx_idp.write_users(data_dir / "users.json")
    env = dict(os.environ)
    env.update(
        {
            "DX_IDP_ISSUER": issuer,
            "DX_IDP_PORT": str(port),
            "DX_IDP_DATA_DIR": str(data_dir),
            "DX_IDP_USERS_FILE": str(data_dir / "users.json"),
            "DX_IDP_TEST_MODE": "1",
            "DX_IDP_TEST_PASSWORD": test_password,
            "DX_IDP_ACCESS_TOKEN_TTL": str(access_token_ttl),
            # The portal a test runs (tests.support.system) signs people in from this port.
            "DX_IDP_PORTAL_REDIRECTS": f"{portal}/auth/callback",
            "DX_IDP_PORTAL_POST_LOGOUT_REDIRECTS": f"{portal}/",
        }
    )
    log = data_dir / "idp.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [node, str(dx_idp.IDP_DIR / "server.js")],
            cwd=dx_idp.IDP_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            dx_idp.wait(issuer, timeout=30)
        except TimeoutError as error:
            raise RuntimeError(f"the test identity provider did not start:\n{log.read_text()}") from error
        yield Idp(issuer=issuer, test_password=test_password, log=log, portal_port=portal_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
