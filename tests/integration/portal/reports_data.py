"""What the report pages' tests need on top of the portal system's people: a stage-1 curriculum of two
classroom sessions this year with one attended by TRAINEE (self slot), COLLEAGUE nominated last year
and again this year, so this year's decision waits for last year's closing (P6), and one message on the
bus that no consumer can parse, so it lies in a dead-letter queue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.portal.conftest import COLLEAGUE, OWN_DEPARTMENT, TRAINEE, YEAR
from tests.support.bus import publish_raw
from tests.support.system import RunningSystem

LAST_YEAR = YEAR - 1
SESSIONS = ("R-CLASS-1", "R-CLASS-2")


async def load_report_facts(system: RunningSystem) -> None:
    async with system.client(timeout=30) as http:
        departments = f"所属コード,所属名,部局\n{OWN_DEPARTMENT},DX推進課,企画政策部\n"
        roster = f"職員番号,氏名,所属コード\n{COLLEAGUE},職員 三,{OWN_DEPARTMENT}\n"
        for path, body in (("departments", departments), ("staff", roster)):
            imported = await http.post(
                system.url("nomination", f"/api/v1/{path}/import"), params={"fiscal_year": LAST_YEAR},
                content=body.encode("cp932"), headers={"content-type": "text/csv"},
            )
            assert imported.status_code == 200, imported.text
        for session_id in SESSIONS:
            created = await http.post(system.url("training", "/api/v1/sessions"), json={
                "session_id": session_id, "fiscal_year": YEAR, "method": "classroom", "audience": "promoter",
                "stage": 1, "title": f"DX推進員 ステージ1 集合研修 {session_id[-1]}",
            })
            assert created.status_code == 201, created.text
        curriculum = await http.put(system.url("training", f"/api/v1/curricula/{YEAR}/1"),
                                    json={"session_ids": list(SESSIONS)})
        assert curriculum.status_code == 200, curriculum.text
        for staff_id, year, slot in ((TRAINEE, YEAR, "self"), (COLLEAGUE, LAST_YEAR, "recommended"),
                                     (COLLEAGUE, YEAR, "self")):
            nominated = await http.post(system.url("nomination", "/api/v1/nominations"),
                                        json={"staff_id": staff_id, "fiscal_year": year, "slot": slot})
            assert nominated.status_code == 201, nominated.text
        attended = await http.post(
            system.url("training", f"/api/v1/sessions/{SESSIONS[0]}/attendance"),
            json={"staff_ids": [TRAINEE], "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
        )
        assert attended.status_code == 200, attended.text
        await publish_raw(system.settings, b"not a CloudEvent", "nomination.TraineeNominated.v1")
        await _until_reported(system, http)


async def _until_reported(system: RunningSystem, http: httpx.AsyncClient) -> None:
    """The events travel over the bus: wait until reporting and progression have them."""
    deadline = time.monotonic() + 90
    while True:
        trainees = await http.get(
            system.url("reporting", f"/api/v1/reports/departments/{OWN_DEPARTMENT}/trainees"),
            params={"fiscal_year": YEAR})
        pending = await http.get(
            system.url("progression", "/api/v1/decisions"), params={"fiscal_year": LAST_YEAR})
        people = {row["staff_id"]: row for row in trainees.json().get("trainees", [])} if trainees.is_success else {}
        waiting = [item["staff_id"] for item in pending.json().get("items", [])] if pending.is_success else []
        pipeline = await http.get(system.url("reporting", "/api/v1/reports/pipeline"))
        dead = sum(q["messages"] or 0 for q in pipeline.json()["dead_letter_queues"]) if pipeline.is_success else 0
        if people.get(TRAINEE, {}).get("done_count") == 1 and COLLEAGUE in waiting and dead > 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"reports not settled: {people} {waiting} {dead}")
        await asyncio.sleep(0.5)
