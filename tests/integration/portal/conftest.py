"""One running system (the four services and the portal as processes) for the portal's tests, with two
departments, their rosters for the current fiscal year, and a nomination in one of them."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dx_shared.calendar import JST, fiscal_year_of
from dx_shared.settings import Settings
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.support.identity import use_provider
from tests.support.idp import Idp
from tests.support.infra import Servers, create_database, drop_database, unique_name
from tests.support.system import RunningSystem, running_system
from tests.support.webhooks import sign_webhook

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
YEAR = fiscal_year_of(datetime.now(UTC))
OWN_DEPARTMENT, OTHER_DEPARTMENT = "100100", "200200"
TRAINEE, OTHER_TRAINEE, COLLEAGUE = "2600001", "2600002", "2600003"


@contextlib.asynccontextmanager
async def running_portal(servers: Servers, idp: Idp, logs: Path) -> AsyncIterator[RunningSystem]:
    """The four services and the portal on a database and bus names of their own, with the people above."""
    if idp.portal_port is None:
        pytest.skip("the identity provider in use names no portal port (DX_TEST_IDP_PORTAL_PORT)")
    use_provider(idp)
    name = unique_name("dx_portal")
    tag = unique_name("t")
    settings = Settings(
        database_url=await create_database(servers.database_url, name),
        amqp_url=servers.amqp_url,
        webhook_secrets=TEST_WEBHOOK_SECRET,
        outbox_poll_interval=0.2,
        oidc_issuer=idp.issuer,
        oidc_audience=idp.audience,
        exchange=f"dx.events.{tag}",
        dead_letter_exchange=f"dx.dead-letter.{tag}",
        queue_prefix=f"{tag}.",
    )
    try:
        with running_system(settings, logs) as system:
            await _load_people(system)
            yield system
    finally:
        await drop_database(servers.database_url, name)


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-logs") as system:
        yield system


async def _load_people(system: RunningSystem) -> None:
    departments = f"所属コード,所属名,部局\n{OWN_DEPARTMENT},DX推進課,企画政策部\n{OTHER_DEPARTMENT},財政課,総務部\n"
    roster = (
        "職員番号,氏名,所属コード\n"
        f"{TRAINEE},職員 一,{OWN_DEPARTMENT}\n{COLLEAGUE},職員 三,{OWN_DEPARTMENT}\n"
        f"{OTHER_TRAINEE},職員 二,{OTHER_DEPARTMENT}\n"
    )
    async with system.client(timeout=30) as http:
        for path, body in (("departments", departments), ("staff", roster)):
            response = await http.post(
                system.url("nomination", f"/api/v1/{path}/import"), params={"fiscal_year": YEAR},
                content=body.encode("cp932"), headers={"content-type": "text/csv"},
            )
            assert response.status_code == 200, response.text
        nominated = await http.post(
            system.url("nomination", "/api/v1/nominations"),
            json={"staff_id": OTHER_TRAINEE, "fiscal_year": YEAR, "slot": "recommended"},
        )
        assert nominated.status_code == 201, nominated.text


def nominations_of(system: RunningSystem, staff_id: str) -> list[dict[str, object]]:
    """What nomination holds for a person this year, asked as the DX office."""
    response = httpx.get(
        system.url("nomination", "/api/v1/nominations"), params={"fiscal_year": YEAR, "staff_id": staff_id},
        headers=system.headers, timeout=15,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def complete_stage_one(system: RunningSystem, staff_id: str, session_id: str) -> datetime:
    """Training schedules a one-session stage-1 curriculum for this year and the e-learning platform reports
    the person completed it (signed webhook); returns once progression records the stage as completed."""
    with httpx.Client(headers=system.headers, timeout=30) as http:
        scheduled = http.post(system.url("training", "/api/v1/sessions"), json={
            "session_id": session_id, "fiscal_year": YEAR, "method": "e_learning", "audience": "promoter",
            "stage": 1, "title": "ステージ1 業務効率化 e-ラーニング", "move_on": "completed",
        })
        assert scheduled.status_code == 201, scheduled.text
        curriculum = http.put(system.url("training", f"/api/v1/curricula/{YEAR}/1"), json={"session_ids": [session_id]})
        assert curriculum.status_code == 200, curriculum.text
        occurred = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(JST)
        body = json.dumps({"type": "completion", "session_id": session_id, "staff_id": staff_id,
                           "occurred_at": occurred.isoformat()}).encode()
        delivered = http.post(system.url("training", "/webhooks/elearning"), content=body,
                              headers=sign_webhook(system.settings.webhook_secret_list[0], body))
        assert delivered.status_code == 200, delivered.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            standing = http.get(system.url("progression", f"/api/v1/trainees/{staff_id}"))
            if standing.status_code == 200 and any(
                y["fiscal_year"] == YEAR and y["completed"] for y in standing.json()["years"]
            ):
                return occurred
            time.sleep(0.5)
    raise AssertionError("progression never recorded the stage as completed")
