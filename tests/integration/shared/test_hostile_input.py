"""Long, malformed and hostile input on every service: streamed bodies over the limit are 413, every
string field of every request model has a maximum length, correlation ids are replaced when unsafe."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from dx_shared.settings import Settings
from tests.support.services import pool_of, running_app

SERVICES = ("nomination", "training", "progression", "reporting")
# A JSON route on each service that takes a body (whatever the route, the limit is the same); reporting
# has no route that reads a body.
BODY_ROUTES = {
    "nomination": "/api/v1/nominations",
    "training": "/api/v1/sessions",
    "progression": "/api/v1/fiscal-years/2025/close",
}
LIMIT = 64 * 1024


def create(service: str) -> Any:
    return importlib.import_module(f"{service}.main").create_app


async def chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


@pytest.mark.parametrize("service", sorted(BODY_ROUTES))
async def test_a_body_streamed_without_content_length_over_the_limit_is_413_on_every_route(
    settings: Settings, service: str
) -> None:
    limited = settings.model_copy(update={"max_upload_bytes": LIMIT, "max_body_bytes": LIMIT // 4})
    async with running_app(create(service), limited) as client:
        response = await client.post(
            BODY_ROUTES[service], content=chunks(4 * LIMIT), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413, response.text[:300]
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        if service == "training":
            webhook = await client.post("/webhooks/elearning", content=chunks(LIMIT // 2))
            assert webhook.status_code == 413
            upload = await client.post(
                "/api/v1/completions/import", content=chunks(2 * LIMIT), headers={"content-type": "text/csv"}
            )
            assert upload.status_code == 413


def string_schemas_without_max_length(app: FastAPI) -> list[str]:
    """Every string in a request body schema (followed through $ref, arrays, unions) that has no maxLength."""
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    missing: list[str] = []
    seen: set[str] = set()

    def walk(schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                walk(components[name], name)
            return
        if (
            schema.get("type") == "string"
            and "maxLength" not in schema
            and "enum" not in schema
            and schema.get("format") not in ("date-time", "binary", "date")
        ):
            missing.append(where)
        for key in ("anyOf", "oneOf", "allOf"):
            for index, option in enumerate(schema.get(key, [])):
                walk(option, f"{where}|{index}")
        if "items" in schema:
            walk(schema["items"], f"{where}[]")
        for name, prop in schema.get("properties", {}).items():
            walk(prop, f"{where}.{name}")

    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content and "schema" in content:
                walk(content["schema"], f"{method.upper()} {path}")
    return missing


@pytest.mark.parametrize("service", SERVICES)
def test_every_string_field_of_every_request_model_has_a_maximum_length(settings: Settings, service: str) -> None:
    assert string_schemas_without_max_length(create(service)(settings)) == []


async def test_an_unsafe_or_overlong_correlation_id_is_replaced_and_never_stored(settings: Settings) -> None:
    async with running_app(create("progression"), settings) as client:
        for stated in (b"x" * 129, b"a b", b"<script>", "相関".encode()):
            response = await client.post("/api/v1/fiscal-years/2025/close", headers={"X-Correlation-ID": stated})
            replaced = response.headers["X-Correlation-ID"]
            assert replaced.encode() != stated
            assert len(replaced) <= 128
        kept = await client.get("/healthz", headers={"X-Correlation-ID": "req-42.a:b_c"})
        assert kept.headers["X-Correlation-ID"] == "req-42.a:b_c"
        stored = await pool_of(client).fetch("SELECT correlation_id FROM outbox")
        assert stored and all(len(row["correlation_id"]) <= 128 for row in stored)
        assert not any(row["correlation_id"] == "x" * 129 for row in stored)


async def test_an_error_body_never_echoes_the_whole_input(settings: Settings) -> None:
    huge = "あ" * 50_000
    async with running_app(create("nomination"), settings) as client:
        response = await client.post(
            "/api/v1/nominations", json={huge: 1, "staff_id": huge, "fiscal_year": huge, "slot": huge}
        )
        assert response.status_code == 422
        assert len(response.text) < 10_000
        listed = await client.get("/api/v1/departments", params={"fiscal_year": huge[:5000]})
        assert listed.status_code == 422
        assert len(listed.text) < 2_000
