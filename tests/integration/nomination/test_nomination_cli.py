"""The offices' command line against the service listening on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from dx_shared.settings import Settings
from nomination import cli
from tests.integration.nomination.conftest import DATA

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def cli_signs_in_at_the_test_provider(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI is a program: it gets a client-credentials token from the issuer in its environment."""
    monkeypatch.setenv("DX_OIDC_ISSUER", settings.oidc_issuer)


@contextlib.asynccontextmanager
async def listening(client) -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port, lifespan="off", log_level="error"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = await asyncio.to_thread(cli.main, list(argv), out)
    return status, out.getvalue()


async def test_the_cli_imports_a_list_and_prints_what_changed(client) -> None:
    async with listening(client) as url:
        dry = await run_cli(
            "import-departments",
            str(DATA / "departments_2024_sjis.csv"),
            "--fiscal-year",
            "R6",
            "--dry-run",
            "--url",
            url,
        )
        first = await run_cli(
            "import-departments", str(DATA / "departments_2024_sjis.csv"), "--fiscal-year", "2024", "--url", url
        )
        again = await run_cli(
            "import-departments", str(DATA / "departments_2024_sjis.csv"), "--fiscal-year", "2024", "--url", url
        )

    assert dry[0] == 0 and "dry run" in dry[1] and "added 6" in dry[1]
    assert first[0] == 0 and "added 6" in first[1] and "imported" in first[1]
    assert again[0] == 0 and "unchanged 6" in again[1] and "nothing changed" in again[1]


async def test_the_cli_prints_every_bad_row_and_fails(client) -> None:
    async with listening(client) as url:
        await run_cli(
            "import-departments", str(DATA / "departments_2024_utf8_bom.csv"), "--fiscal-year", "2024", "--url", url
        )
        status, printed = await run_cli(
            "import-staff", str(DATA / "staff_2024_bad_rows.csv"), "--fiscal-year", "2024", "--url", url
        )

    assert status == 1
    assert "IMPORT_REJECTED" in printed
    for line, code in [
        (3, "MISSING_VALUE"),
        (4, "BAD_MANAGER_FLAG"),
        (6, "DUPLICATE_STAFF_ID"),
        (9, "WRONG_COLUMN_COUNT"),
    ]:
        assert f"{line} 行目 {code}" in printed


async def test_the_cli_says_when_the_service_is_unreachable() -> None:
    status, printed = await run_cli(
        "import-staff", str(DATA / "staff_2024_sjis.csv"), "--fiscal-year", "2024", "--url", "http://127.0.0.1:9"
    )

    assert status == 2 and "cannot reach" in printed
