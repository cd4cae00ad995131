"""The four services' public JSON APIs, called with the signed-in person's own access token.

The portal adds no rule of its own: a refusal from a service comes back as `ServiceRefused` carrying the
service's problem document (its Japanese `title_ja` is what the person reads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from dx_shared.settings import Settings


@dataclass
class ServiceRefused(Exception):
    status: int
    problem: dict[str, Any]

    @property
    def title_ja(self) -> str:
        return str(self.problem.get("detail_ja") or self.problem.get("title_ja") or "処理できませんでした")

    @property
    def code(self) -> str:
        return str(self.problem.get("code") or "")


class ServiceUnavailable(Exception):
    """A service did not answer (down, timed out, or 5xx): the page says to try again later (503)."""


class ServicesApi:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._urls = {
            "nomination": settings.nomination_url,
            "training": settings.training_url,
            "progression": settings.progression_url,
            "reporting": settings.reporting_url,
        }

    @property
    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    async def get(self, service: str, path: str, token: str, **params: Any) -> Any:
        return await self._call("GET", service, path, token, params={k: v for k, v in params.items() if v is not None})

    async def get_or_none(self, service: str, path: str, token: str, **params: Any) -> Any:
        """The document, or None when the service answers 404 (nothing recorded yet)."""
        try:
            return await self.get(service, path, token, **params)
        except ServiceRefused as refused:
            if refused.status == 404:
                return None
            raise

    async def post(self, service: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
        return await self._call("POST", service, path, token, json=body)

    async def put(self, service: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
        return await self._call("PUT", service, path, token, json=body)

    async def post_file(self, service: str, path: str, token: str, content: bytes, **params: Any) -> Any:
        """Sends a file (a CSV) as the raw body, as the services' import endpoints take it."""
        return await self._call("POST", service, path, token, content=content, params=params,
                                headers={"content-type": "text/csv"})

    async def get_bytes(self, service: str, path: str, token: str, **params: Any) -> httpx.Response:
        """The answer itself (a CSV download), after the same refusal and outage checks."""
        return await self._request("GET", service, path, token, params={k: v for k, v in params.items() if v})

    async def _call(self, method: str, service: str, path: str, token: str, **kwargs: Any) -> Any:
        response = await self._request(method, service, path, token, **kwargs)
        return response.json() if response.content else None

    async def _request(self, method: str, service: str, path: str, token: str, *,
                       headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(
                method, f"{self._urls[service]}{path}",
                headers={**(headers or {}), "Authorization": f"Bearer {token}"}, **kwargs,
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"{service}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{service}: {response.status_code}")
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            raise ServiceRefused(response.status_code, problem if isinstance(problem, dict) else {})
        return response

    async def ready(self) -> dict[str, str]:
        return {service: await self.reachable(f"{url}/readyz") for service, url in self._urls.items()}

    async def reachable(self, url: str) -> str:
        try:
            response = await self._http.get(url, timeout=2)
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok" if response.status_code == 200 else f"not ready ({response.status_code})"
