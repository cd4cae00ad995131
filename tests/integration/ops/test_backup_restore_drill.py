"""The restore drill of the operations manual (docs/運用手順書.md), run for real.

A fiscal year of the demo history goes in through the services' own APIs and signed webhook, and the
DX office closes that year. Every service is dumped with `python -m dx_tools.backup dump` while the
system runs, then each dump is restored with `python -m dx_tools.backup restore` into a new, empty
database of its own (so the services also run on four databases, `DX_<SERVICE>_DATABASE_URL`). The
services start on the restored databases, reporting rebuilds every projection from its event log, and
every report, trainee record, nomination and completion equals what it was before the backup.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dx_shared.settings import Settings
from dx_tools.backup import SERVICES as BACKED_UP  # the portal keeps only sign-in sessions
from dx_tools.demo import load, wait_until_settled
from reporting.rebuild import rebuild
from tests.support.infra import Servers, create_database, drop_database, unique_name
from tests.support.system import ROOT, SERVICES, RunningSystem, running_system

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ARTIFACTS = ROOT / "test-artifacts"
YEARS = range(2024, 2025)


def _with_urls(settings: Settings, system: RunningSystem) -> Settings:
    return settings.model_copy(update={f"{service}_url": system.url(service) for service in SERVICES})


async def _get(http: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await http.get(url, params=params)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


async def snapshot(system: RunningSystem) -> dict[str, Any]:
    """What the offices see: every report (JSON and CSV), and each service's own records."""
    seen: dict[str, Any] = {}
    async with system.client(timeout=60) as http:
        reports = system.url("reporting", "/api/v1/reports")
        seen["plan"] = await _get(http, f"{reports}/plan", **{"from": 2024, "to": 2028})
        seen["plan.csv"] = await _get(http, f"{reports}/plan.csv", **{"from": 2024, "to": 2028})
        for year in YEARS:
            for report in ("departments", "baseline", "sessions"):
                seen[f"{report}/{year}"] = await _get(http, f"{reports}/{report}", fiscal_year=year)
                seen[f"{report}.csv/{year}"] = await _get(http, f"{reports}/{report}.csv", fiscal_year=year)
            seen[f"nominations/{year}"] = await _get(
                http, system.url("nomination", "/api/v1/nominations"), fiscal_year=year, page_size=1000
            )
            seen[f"completions/{year}"] = await _get(
                http, system.url("training", "/api/v1/completions"), fiscal_year=year, limit=10000
            )
        seen["sessions"] = await _get(http, system.url("training", "/api/v1/sessions"))
        trainees = sorted({item["staff_id"] for year in YEARS for item in seen[f"nominations/{year}"]["items"]})
        for staff_id in trainees[:40]:
            seen[f"progression/{staff_id}"] = await _get(http, system.url("progression", f"/api/v1/trainees/{staff_id}"))
            seen[f"reporting/{staff_id}"] = await _get(http, f"{reports}/trainees/{staff_id}")
    return seen


def backup(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dx_tools.backup", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture
async def restored_databases(servers: Servers) -> AsyncIterator[dict[str, str]]:
    """One new, empty database per service, dropped afterwards."""
    names = {service: unique_name(f"dx_restore_{service[:4]}") for service in SERVICES}
    urls = {service: await create_database(servers.database_url, name) for service, name in names.items()}
    yield urls
    for name in names.values():
        await drop_database(servers.database_url, name)


async def test_every_service_restores_into_empty_databases_and_the_reports_are_as_before(
    settings: Settings, restored_databases: dict[str, str], tmp_path: Path
) -> None:
    dumps = {service: tmp_path / f"{service}.dump" for service in BACKED_UP}
    with running_system(settings, ARTIFACTS / "drill-logs" / "before") as system:
        running = _with_urls(settings, system)
        await load(running, 2024, YEARS, quiet=True)
        async with system.client(timeout=60) as http:
            closed = await http.post(system.url("progression", "/api/v1/fiscal-years/2024/close"), json={"actor": "drill"})
            assert closed.status_code in (200, 201), closed.text
            await wait_until_settled(running, http, timeout=120)
        before = await snapshot(system)
        assert len(before["nominations/2024"]["items"]) > 100, "the drill has real data to lose"
        assert any(cell["completed"] for stage in before["plan"]["stages"] for cell in stage["cells"])
        for service in BACKED_UP:  # taken while the services run, as a nightly backup would be
            dumped = backup(system.env, "dump", "--service", service, "--out", str(dumps[service]))
            assert dumped.returncode == 0, dumped.stderr
            assert dumps[service].stat().st_size > 0

    after_restore = settings.model_copy(
        update={f"{service}_database_url": url for service, url in restored_databases.items()}
    )
    with running_system(after_restore, ARTIFACTS / "drill-logs" / "restore-target") as target:
        # the databases are not empty any more once services started on them: a restore must refuse
        refused = backup(target.env, "restore", "--service", "training", str(dumps["training"]))
        assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr

    for service in BACKED_UP:
        forced = backup(target.env, "restore", "--service", service, str(dumps[service]), "--force")
        assert forced.returncode == 0, forced.stderr
    wrong = backup(target.env, "restore", "--service", "nomination", str(dumps["training"]), "--force")
    assert wrong.returncode == 1 and "not the nomination schema" in wrong.stderr, wrong.stderr

    with running_system(after_restore, ARTIFACTS / "drill-logs" / "after") as system:
        running = _with_urls(after_restore, system)
        result = await rebuild(running, progress=False)
        assert result.events > 0, "reporting rebuilt its projections from the restored event log"
        async with system.client(timeout=60) as http:
            await wait_until_settled(running, http, timeout=120)
        after = await snapshot(system)

    assert after.keys() == before.keys()
    differing = [key for key in before if before[key] != after[key]]
    assert not differing, f"differs after the restore: {differing[:10]}"
    await _assert_each_service_lives_in_its_own_database(restored_databases)


async def _assert_each_service_lives_in_its_own_database(urls: dict[str, str]) -> None:
    for service, url in urls.items():
        conn = await asyncpg.connect(url)
        try:
            schemas = {
                row["nspname"]
                for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])", SERVICES)
            }
        finally:
            await conn.close()
        assert schemas == {service}, (service, schemas)
