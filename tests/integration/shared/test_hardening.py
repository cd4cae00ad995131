"""What every service answers about itself: security headers, docs only in development mode, /metrics
only on its internal port, and an unreachable identity provider as 503 (not 401, not 500)."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from reporting.main import create_app
from tests.support.identity import bearer
from tests.support.services import running_app
from tests.support.system import free_port

pytestmark = pytest.mark.integration


async def test_every_response_carries_the_security_headers_and_html_a_strict_policy(settings: Settings) -> None:
    async with running_app(create_app, settings) as client:
        for response in (await client.get("/healthz"), await client.get("/api/v1/reports/plan"),
                         await client.get("/"), await client.get("/api/v1/reports/plan", headers={})):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["cache-control"] == "no-store"
    # The services' only HTML is the API document page of development mode (people use the portal).
    async with running_app(create_app, settings.model_copy(update={"dev_mode": True})) as client:
        page = await client.get("/docs", headers={})
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert "<script>" not in page.text and "style=" not in page.text and "<style" not in page.text


async def test_docs_and_the_schema_exist_only_in_development_mode_and_need_no_cdn(settings: Settings) -> None:
    async with running_app(create_app, settings) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 404
    async with running_app(create_app, settings.model_copy(update={"dev_mode": True})) as client:
        docs = await client.get("/docs", headers={})
        assert docs.status_code == 200
        assert "http" not in docs.text.split("<body>")[1], "every asset comes from the service itself"
        assert (await client.get("/docs/assets/swagger-ui-bundle.js", headers={})).status_code == 200
        assert (await client.get("/docs/init.js", headers={})).status_code == 200
        assert (await client.get("/openapi.json", headers={})).json()["components"]["securitySchemes"]["bearer"]


async def test_metrics_are_served_on_the_internal_port_only(settings: Settings) -> None:
    async with running_app(create_app, settings) as client:
        assert (await client.get("/metrics")).status_code == 404
        port = client.app.state.metrics_port  # type: ignore[attr-defined]
        async with httpx.AsyncClient() as http:
            internal = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert internal.status_code == 200
        assert "dx_http_request_seconds" in internal.text


async def test_an_unreachable_identity_provider_is_a_503_to_retry_not_a_refusal(settings: Settings) -> None:
    token = bearer()
    nowhere = settings.model_copy(update={"oidc_issuer": f"http://127.0.0.1:{free_port()}"})
    async with running_app(create_app, nowhere, headers=token) as client:
        response = await client.get("/api/v1/reports/plan")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["code"] == "IDENTITY_PROVIDER_UNAVAILABLE"
