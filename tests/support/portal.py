"""Signing in at the portal the way a browser does: portal → provider's authorize → login form →
provider → portal callback, following every redirect by hand so each step can be inspected."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from tests.support.idp import Idp


@dataclass
class PortalVisit:
    """One browser's cookies and the answers of the last sign-in (for asserting on cookie flags)."""

    portal_url: str
    browser: httpx.Client
    answers: list[httpx.Response] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.portal_url}{path}"

    @property
    def origin(self) -> str:
        return self.portal_url

    def get(self, path: str) -> httpx.Response:
        return self.browser.get(self.url(path))

    def post_form(self, path: str, data: dict[str, str], origin: str | None = "same") -> httpx.Response:
        headers = {} if origin is None else {"Origin": self.origin if origin == "same" else origin}
        return self.browser.post(self.url(path), data=data, headers=headers)


def username_for(role: str, department: str | None = None, staff_id: str | None = None) -> str:
    return f"test:{role}:{department or '-'}:{staff_id or '-'}"


def sign_in(idp: Idp, portal_url: str, username: str, password: str | None = None,
            browser: httpx.Client | None = None) -> PortalVisit:
    """Returns the visit once the portal has answered its first page after the callback."""
    browser = browser or httpx.Client(timeout=15, follow_redirects=False)
    visit = PortalVisit(portal_url=portal_url, browser=browser)
    response = browser.get(f"{portal_url}/auth/login")
    for _ in range(15):
        visit.answers.append(response)
        if response.is_redirect:
            response = browser.get(urljoin(str(response.url), response.headers["location"]))
        elif response.status_code == 200 and 'name="password"' in response.text:
            action = f"{response.url.copy_with(query=None)}/login"
            response = browser.post(action, data={"username": username, "password": password or idp.test_password})
        elif urlsplit(str(response.url)).port == urlsplit(portal_url).port:
            return visit
        else:
            raise AssertionError(f"unexpected answer while signing in: {response.status_code} {response.text[:300]}")
    raise AssertionError("the sign-in did not come back to the portal")
