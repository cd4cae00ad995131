"""Bad input of every kind gets a clear answer, never a 500, on every endpoint of every service.

For each service, every route in its own OpenAPI document is sent arbitrary JSON values,
arbitrary bytes, and arbitrary path and query values, in-process against the real database, as a signed-in
DX-office person (every scope), so the input reaches the route instead of stopping at the token check.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dx_shared.settings import Settings
from tests.support import running_app

pytestmark = pytest.mark.integration

SERVICES = ("nomination", "training", "progression", "reporting")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
path_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=12
)
query_values = st.one_of(
    st.integers(-5, 3000).map(str), st.text(max_size=10), st.sampled_from(["FY2024", "R6", "令和6年度"])
)


def routes_of(service: str) -> list[tuple[str, str]]:
    app = importlib.import_module(f"{service}.main").create_app(Settings())
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method in ("post", "put", "get") and path not in ("/metrics", "/healthz", "/readyz"):
                routes.append((method.upper(), path))
    return routes


@pytest.mark.parametrize("service", SERVICES)
async def test_no_endpoint_answers_500_to_arbitrary_input(service: str, settings: Settings) -> None:
    routes = routes_of(service)
    assert routes, f"{service} has endpoints"
    module = importlib.import_module(f"{service}.main")
    async with running_app(module.create_app, settings) as client:

        @hypothesis_settings(
            max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
        )
        @given(
            route=st.sampled_from(routes),
            body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)),
            segment=path_values,
            query=query_values,
            content_type=st.sampled_from(["application/json", "text/csv", "application/octet-stream"]),
        )
        def explore(route: tuple[str, str], body: bytes, segment: str, query: str, content_type: str) -> None:
            answers.append((route, body, segment, query, content_type))

        answers: list[tuple[tuple[str, str], bytes, str, str, str]] = []
        explore()
        failures: list[Any] = []
        for (method, path), body, segment, query, content_type in answers:
            filled = quote(segment, safe="")
            url = re.sub(r"\{[^}]+\}", lambda _match, value=filled: value, path)
            response = await client.request(
                method,
                url,
                content=body,
                params={"fiscal_year": query},
                headers={"content-type": content_type},
            )
            if response.status_code >= 500:
                failures.append((method, url, body[:80], response.status_code, response.text[:200]))
            if response.status_code == 401 and path != "/webhooks/elearning":
                failures.append((method, url, "not authenticated: the input never reached the route"))
        assert failures == [], failures


async def test_a_nul_character_that_postgres_cannot_store_is_refused_as_invalid_value(settings: Settings) -> None:
    module = importlib.import_module("progression.main")
    async with running_app(module.create_app, settings) as client:
        response = await client.get("/api/v1/trainees/a%00b")
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_VALUE"
