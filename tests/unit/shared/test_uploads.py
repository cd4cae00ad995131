"""Uploaded files are read with a limit, from the raw body or the multipart field `file`."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from dx_shared.problems import install_problem_handlers
from dx_shared.uploads import read_uploaded_file

LIMIT = 64


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await read_uploaded_file(request, LIMIT))}

    return application


@pytest.fixture
async def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://test")


async def test_a_raw_body_within_the_limit_is_read_whole(client: httpx.AsyncClient) -> None:
    response = await client.post("/upload", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"})
    assert response.json() == {"bytes": 8}


async def test_a_multipart_file_is_read_from_its_file_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/upload", files={"file": ("staff.csv", b"x" * 10, "text/csv")})
    assert response.json() == {"bytes": 10}


async def test_a_multipart_body_without_a_file_field_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/upload", files={"other": ("staff.csv", b"x", "text/csv")})
    assert response.status_code == 422
    assert response.json()["code"] == "MISSING_FILE"


@pytest.mark.parametrize("multipart", [False, True])
async def test_a_body_over_the_limit_is_refused_with_413_as_problem_json(
    client: httpx.AsyncClient, multipart: bool
) -> None:
    if multipart:
        response = await client.post("/upload", files={"file": ("big.csv", b"x" * (LIMIT * 4), "text/csv")})
    else:
        response = await client.post("/upload", content=b"x" * (LIMIT + 1), headers={"content-type": "text/csv"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
