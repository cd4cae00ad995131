"""The foundation's end-to-end flow across four separate processes, through HTTP only.

Import a department list and a roster → nominate (recommended slot) → progression enters the person
at stage 1 → training schedules the stage-1 session and publishes the curriculum → the e-learning
platform posts a signed completion → progression completes stage 1 → the plan report shows, for
stage 1 and FY2024, 1 entered and 1 completed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dx_shared.settings import Settings
from tests.support import BusProbe
from tests.support.system import RunningSystem, running_system
from tests.support.webhooks import sign_webhook

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def system(settings: Settings) -> Iterator[RunningSystem]:
    with running_system(settings, ARTIFACTS / "e2e-logs") as running:
        yield running


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def stage_one_fy2024(plan: dict[str, Any]) -> dict[str, Any]:
    stage = next(row for row in plan["stages"] if row["stage"] == 1)
    return next(cell for cell in stage["cells"] if cell["fiscal_year"] == 2024)


async def test_a_nomination_and_a_signed_completion_flow_through_all_four_services_into_the_plan_report(
    system: RunningSystem,
) -> None:
    async with system.client(timeout=30) as http, BusProbe(system.settings) as probe:
        await walk_the_flow(system, http, probe)


async def walk_the_flow(system: RunningSystem, http: httpx.AsyncClient, probe: BusProbe) -> None:
    departments = "所属コード,所属名,部局\n100100,DX推進課,企画政策部\n".encode("cp932")
    roster = "職員番号,氏名,所属コード,管理職\n2400001,青森 花子,100100,0\n".encode("cp932")
    for path, body in (("departments", departments), ("staff", roster)):
        imported = await http.post(
            system.url("nomination", f"/api/v1/{path}/import"),
            params={"fiscal_year": 2024},
            content=body,
            headers={"content-type": "text/csv"},
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["summary"]["added"] == 1

    correlation = f"e2e-{uuid.uuid4()}"
    nominated = await http.post(
        system.url("nomination", "/api/v1/nominations"),
        json={"staff_id": "2400001", "fiscal_year": 2024, "slot": "recommended", "department_code": "100100"},
        headers={"X-Correlation-ID": correlation},
    )
    assert nominated.status_code == 201, nominated.text

    async def entered_stage_one() -> bool:
        response = await http.get(system.url("progression", "/api/v1/trainees/2400001"))
        return response.status_code == 200 and any(
            year["fiscal_year"] == 2024 and year["stage"] == 1 for year in response.json()["years"]
        )

    await eventually(entered_stage_one, "progression to enter the trainee at stage 1 (StageAdvanced 0→1)")
    nomination_event = (await probe.wait_for_type("TraineeNominated"))[0]
    advanced = (await probe.wait_for_type("StageAdvanced"))[0]
    assert nomination_event.correlationid == correlation, "the request's correlation id is carried to its event"
    assert advanced.correlationid == correlation, "and on to every event it causes"
    assert advanced.causationid == nomination_event.id
    assert advanced.subject == "2400001"
    assert advanced.data["from_stage"] == 0 and advanced.data["to_stage"] == 1

    scheduled = await http.post(
        system.url("training", "/api/v1/sessions"),
        json={
            "session_id": "R6-S1-EL",
            "fiscal_year": 2024,
            "method": "e_learning",
            "audience": "promoter",
            "stage": 1,
            "title": "ステージ1 業務効率化 e-ラーニング",
            "move_on": "completed",
        },
    )
    assert scheduled.status_code == 201, scheduled.text
    curriculum = await http.put(system.url("training", "/api/v1/curricula/2024/1"), json={"session_ids": ["R6-S1-EL"]})
    assert curriculum.status_code == 200, curriculum.text

    body = json.dumps(
        {
            "type": "completion",
            "session_id": "R6-S1-EL",
            "staff_id": "2400001",
            "occurred_at": "2024-06-03T10:15:00+09:00",
        }
    ).encode()
    headers = sign_webhook(system.settings.webhook_secret_list[0], body)
    delivered = await http.post(system.url("training", "/webhooks/elearning"), content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    retried = await http.post(system.url("training", "/webhooks/elearning"), content=body, headers=headers)
    assert retried.status_code == 200, "a retry of the same delivery is answered 2xx"

    async def plan_shows_one_completed() -> dict[str, Any] | None:
        plan = await http.get(system.url("reporting", "/api/v1/reports/plan"), params={"from": 2024, "to": 2028})
        cell = stage_one_fy2024(plan.json())
        return cell if cell["entered"] == 1 and cell["completed"] == 1 else None

    cell = await eventually(plan_shows_one_completed, "the plan report to show stage 1 / FY2024 entered 1, completed 1")
    assert cell == {"fiscal_year": 2024, "plan": None, "entered": 1, "completed": 1, "new": 1}

    trainee = (await http.get(system.url("progression", "/api/v1/trainees/2400001"))).json()
    year = next(year for year in trainee["years"] if year["fiscal_year"] == 2024)
    assert year["completed"] is True
    await asyncio.sleep(1.0)
    again = (await http.get(system.url("reporting", "/api/v1/reports/plan"), params={"from": 2024, "to": 2028})).json()
    assert len(probe.of_type("SessionCompleted")) == 1, "the retry produced no second completion"
    assert len(probe.of_type("StageCompleted")) == 1
    assert stage_one_fy2024(again)["completed"] == 1, "the retried delivery was not counted twice"
    assert_logs_are_json_with_ids_and_name_nobody(system, correlation)


def assert_logs_are_json_with_ids_and_name_nobody(system: RunningSystem, correlation: str) -> None:
    """Every service logs structlog JSON carrying service and correlation ids, and never a person's name."""
    lines = [
        json.loads(line)
        for path in system.logs.glob("*.log")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]
    assert lines, "the services wrote JSON log lines"
    assert all("service" in line for line in lines)
    assert {line["service"] for line in lines if line.get("correlation_id") == correlation} >= {"progression"}
    text = "\n".join(path.read_text(encoding="utf-8") for path in system.logs.glob("*.log"))
    assert "青森" not in text and "花子" not in text, "no personal names in logs (APPI)"
