"""A rebuild from the event log yields exactly the live projections, and the service keeps consuming after it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dx_shared.envelope import CloudEvent
from reporting.rebuild import rebuild
from tests.integration.reporting import event_factory as f

pytestmark = pytest.mark.integration

YEARS = (2024, 2025, 2026)
DEPARTMENTS = [(f"D{n:02}", f"所属{n:02}", f"部局{n % 3}") for n in range(1, 13)]
STAFF = [f"S{n:03}" for n in range(1, 61)]


def random_stream(seed: int) -> list[CloudEvent]:
    rng = random.Random(seed)
    events: list[CloudEvent] = []
    for year in YEARS:
        events.append(f.departments(year, *DEPARTMENTS))
        events.append(f.roster(year, *[(s, rng.choice(DEPARTMENTS)[0], rng.random() < 0.2) for s in STAFF]))
        events += [f.session(f"B{year}", year, "all_staff"), f.session(f"C{year}", year, "all_staff", "classroom"),
                   f.session(f"M{year}", year, "managers")]
        for stage in (1, 2):
            events.append(f.session(f"P{year}{stage}", year, "promoter", "hands_on", stage=stage))
            events.append(f.curriculum(year, stage, [f"P{year}{stage}"]))
        for staff_id in rng.sample(STAFF, 30):
            events.append(f.session_completed(f"c-{year}-{staff_id}", rng.choice([f"B{year}", f"C{year}"]),
                                              staff_id, year))
        for staff_id in rng.sample(STAFF, 5):
            events.append(f.waived(f"w-{year}-{staff_id}", f"M{year}", staff_id, year))
        for index, staff_id in enumerate(rng.sample(STAFF, 15)):
            department = rng.choice(DEPARTMENTS)[0]
            nomination_id = f"n-{year}-{staff_id}"
            events.append(f.nominated(nomination_id, staff_id, department, year, rng.choice(["recommended", "self"])))
            stage = rng.choice([1, 1, 2])
            decided = f.BASE_TIME + timedelta(days=365 * (year - 2024) + index)
            decision = f.advanced(staff_id, year, 0 if stage == 1 else stage - 1, stage, at=decided)
            events.append(decision)
            if rng.random() < 0.2:
                events.append(f.repeated(staff_id, year, 1, at=decided + timedelta(hours=1)))
            if rng.random() < 0.4:
                events.append(f.session_completed(f"p-{year}-{staff_id}", f"P{year}{stage}", staff_id, year,
                                                  method="hands_on"))
                events.append(f.completed_stage(staff_id, year, stage, decision=decision.id))
                if rng.random() < 0.3:
                    events.append(f.advanced(staff_id, year, 0 if stage == 1 else stage - 1, stage,
                                             corrects=decision.id, at=decided + timedelta(days=400)))
            elif rng.random() < 0.3:
                events.append(f.withdrawn(nomination_id, staff_id, year))
                events.append(f.cancelled(staff_id, year, stage, at=decided + timedelta(days=2)))
    events.append(f.closed(2024, datetime(2025, 4, 30, tzinfo=UTC)))
    events.append(f.session_completed("late-1", "B2024", "S001", 2024, recorded_at=datetime(2025, 6, 1, tzinfo=UTC)))
    events += [f.unmatched(f"u-{n}") for n in range(3)]
    rng.shuffle(events)
    return events


async def every_report(client: httpx.AsyncClient) -> dict[str, Any]:
    paths = ["/api/v1/reports/plan", "/api/v1/reports/pipeline"]
    for year in YEARS:
        paths += [f"/api/v1/reports/{name}?fiscal_year={year}" for name in ("departments", "baseline", "sessions")]
    paths += [f"/api/v1/reports/trainees/{staff_id}" for staff_id in STAFF]
    reports: dict[str, Any] = {}
    for path in paths:
        response = await client.get(path)
        reports[path] = (response.status_code, response.json())
    csv = await client.get("/api/v1/reports/plan.csv")
    reports["plan.csv"] = csv.content
    return reports


async def test_rebuilt_projections_equal_the_live_ones_after_a_random_stream(settings, reporting) -> None:
    events = random_stream(seed=20240229)
    await f.feed(settings, reporting, events[:-20])
    await f.feed(settings, reporting, events[-20:], copies=2)
    live = await every_report(reporting)

    serving = asyncio.create_task(_keep_reading(reporting))
    result = await rebuild(settings, progress=False)
    reads_during_rebuild = await _stop(serving)

    assert result.events == len(events)
    assert await every_report(reporting) == live
    assert reads_during_rebuild > 0
    assert live["/api/v1/reports/plan"][1]["stages"][0]["cumulative"]["entered"] > 0


async def test_the_service_keeps_consuming_into_the_swapped_in_tables(settings, reporting) -> None:
    await f.feed(settings, reporting, [f.nominated("N1", "S1", "D01", 2024, "recommended"),
                                       f.advanced("S1", 2024, 0, 1)])
    await rebuild(settings, progress=False)

    await f.feed(settings, reporting, [f.nominated("N2", "S2", "D01", 2024, "self"), f.advanced("S2", 2024, 0, 1)])

    plan = (await reporting.get("/api/v1/reports/plan")).json()
    assert plan["new_promoters"]["per_year"][0]["actual"] == 2


async def _keep_reading(client: httpx.AsyncClient) -> int:
    reads = 0
    try:
        while True:
            response = await client.get("/api/v1/reports/plan")
            assert response.status_code == 200, response.text
            reads += 1
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        return reads


async def _stop(task: asyncio.Task[int]) -> int:
    task.cancel()
    return await task
