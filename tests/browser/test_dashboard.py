"""The dashboard in a real browser shows the same numbers as the report API, and looks right on a screen.

Runs the services and the portal as processes, feeds a few years of events as the other services would
publish them, signs in to the portal as a DX-office person in Debian's headless Chromium (through the
identity provider's login page), opens `/` and compares every number marked with `data-testid` to the
JSON reports reporting gives the same person. Saves test-artifacts/dashboard.png.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from dx_shared.envelope import CloudEvent
from dx_shared.settings import Settings
from tests.integration.reporting import event_factory as f
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support.idp import Idp
from tests.support.portal import username_for
from tests.support.system import RunningSystem, running_system

pytestmark = pytest.mark.integration

BUREAUS = ["総務部", "財務部", "企画政策部", "健康福祉部", "農林水産部", "県土整備部"]
DEPARTMENTS = [(f"D{n:03}", f"{BUREAUS[n % 6][:-1]}第{n // 6 + 1}課", BUREAUS[n % 6]) for n in range(48)]
STAFF = [f"S{n:04}" for n in range(500)]


def office_history(seed: int = 7) -> list[CloudEvent]:
    """Two full years and a current one: new promoters near the 200 target, continuing volunteers, baseline."""
    rng = random.Random(seed)
    events: list[CloudEvent] = []
    completed: list[str] = []
    nominated_before: set[str] = set()
    for year, newcomers_count in ((2024, 180), (2025, 205), (2026, 110)):
        entries = [(s, rng.choice(DEPARTMENTS)[0], rng.random() < 0.12) for s in STAFF]
        managers = [staff_id for staff_id, _, is_manager in entries if is_manager]
        events.append(f.departments(year, *DEPARTMENTS))
        events.append(f.roster(year, *entries))
        events += [f.session(f"B{year}", year, "all_staff"), f.session(f"M{year}", year, "managers")]
        newcomers = [s for s in STAFF if s not in nominated_before][:newcomers_count]
        continuing = rng.sample(completed, min(len(completed), 40))
        for index, staff_id in enumerate(newcomers + continuing):
            new = staff_id in newcomers
            department = DEPARTMENTS[index % len(DEPARTMENTS)][0] if new else rng.choice(DEPARTMENTS)[0]
            slot = "recommended" if new and index < len(DEPARTMENTS) - 6 else "self"
            events.append(f.nominated(f"n-{year}-{staff_id}", staff_id, department, year, slot))
            stage = 1 if new else min(5, 1 + sum(1 for e in events if e.type.endswith("StageCompleted.v1")
                                                 and e.subject == staff_id))
            events.append(f.advanced(staff_id, year, 0 if new else stage - 1, stage))
            if year < 2026 and rng.random() < 0.8:
                events.append(f.completed_stage(staff_id, year, stage))
                completed.append(staff_id)
            nominated_before.add(staff_id)
        for staff_id in rng.sample(STAFF, int(len(STAFF) * (0.9 if year < 2026 else 0.45))):
            events.append(f.session_completed(f"b-{year}-{staff_id}", f"B{year}", staff_id, year))
        for staff_id in rng.sample(managers, int(len(managers) * (0.85 if year < 2026 else 0.4))):
            events.append(f.session_completed(f"m-{year}-{staff_id}", f"M{year}", staff_id, year, method="classroom"))
        for staff_id in rng.sample(STAFF, 5):
            events.append(f.waived(f"w-{year}-{staff_id}", f"B{year}", staff_id, year))
    events.append(f.closed(2024, datetime(2025, 4, 30, tzinfo=UTC)))
    events.append(f.session_completed("late-1", "B2024", "S0001", 2024, recorded_at=datetime(2025, 5, 8, tzinfo=UTC)))
    events += [f.unmatched("u-1"), f.unmatched("u-2", "unknown staff id")]
    return events


@pytest.fixture
def system(settings: Settings, idp: Idp) -> Iterator[RunningSystem]:
    if idp.portal_port is None:
        pytest.skip("the identity provider in use names no portal port (DX_TEST_IDP_PORTAL_PORT)")
    with running_system(settings, ARTIFACTS / "dashboard-logs") as running:
        yield running


@pytest.fixture
async def client(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    """The reporting API, asked as a DX-office person."""
    async with system.client(base_url=system.url("reporting"), timeout=30) as http:
        yield http


async def settled(client: httpx.AsyncClient, quiet_for: float = 3.0, timeout: float = 90.0) -> None:
    """Waits until reporting has taken no new event for a while (progression answers the fed events with
    decisions of its own, which reporting projects too)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = (await client.get("/api/v1/reports/pipeline")).json()["events_total"]
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return
        await asyncio.sleep(0.3)
    raise AssertionError("reporting kept receiving events")


def as_number(text: str) -> float:
    return float(text.strip().replace(",", "").removesuffix("%"))


def as_percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


async def read_testid(page: Page, name: str) -> str:
    return (await page.get_by_test_id(name).inner_text()).strip()


async def test_dashboard_numbers_equal_the_reports_and_the_screenshot_is_saved(
    settings: Settings, system: RunningSystem, client: httpx.AsyncClient, idp: Idp
) -> None:
    await f.feed(settings, client, office_history(), timeout=120)
    await settled(client)
    plan = (await client.get("/api/v1/reports/plan")).json()
    departments = (await client.get("/api/v1/reports/departments?fiscal_year=2025")).json()
    baseline = (await client.get("/api/v1/reports/baseline?fiscal_year=2025")).json()
    pipeline = (await client.get("/api/v1/reports/pipeline")).json()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, locale="ja-JP")
            refused_by_policy: list[str] = []
            page.on("console", lambda message: refused_by_policy.append(message.text)
                    if "Content Security Policy" in message.text else None)
            await page.goto(system.url("portal", "/auth/login?next=%2F%3Ffiscal_year%3D2025"))
            await page.get_by_label("ユーザー名", exact=False).fill(username_for("dx_office"))
            await page.get_by_label("パスワード", exact=False).fill(idp.test_password)
            await page.get_by_role("button", name="サインイン", exact=False).click()
            await page.wait_for_url(f"{system.url('portal')}/?fiscal_year=2025")
            await page.wait_for_load_state("networkidle")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert refused_by_policy == [], "the page needs something its Content-Security-Policy forbids"
            header_colour = await page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")
            assert header_colour == "rgb(30, 78, 140)", "the stylesheet (served with the token) is applied"

            assert "令和7年度" in await read_testid(page, "selected-fiscal-year")
            for stage in plan["stages"]:
                for cell in stage["cells"]:
                    key = f"{stage['stage']}-{cell['fiscal_year']}"
                    assert as_number(await read_testid(page, f"plan-entered-{key}")) == cell["entered"], key
                    assert as_number(await read_testid(page, f"plan-completed-{key}")) == cell["completed"], key
                assert as_number(await read_testid(page, f"plan-entered-{stage['stage']}-total")) == (
                    stage["cumulative"]["entered"])
            for entry in plan["new_promoters"]["per_year"]:
                assert as_number(await read_testid(page, f"new-actual-{entry['fiscal_year']}")) == entry["actual"]
                assert await read_testid(page, f"new-share-{entry['fiscal_year']}") == as_percent(entry["share"])
            cumulative = plan["new_promoters"]["cumulative"]
            assert as_number(await read_testid(page, "new-cumulative-actual")) == cumulative["actual"]
            assert as_number(await read_testid(page, "kpi-cumulative-actual")) == cumulative["actual"]
            assert as_number(await read_testid(page, "missing-count")) == len(departments["missing_nomination"])
            for department in departments["missing_nomination"]:
                assert await page.get_by_test_id(f"missing-department-{department['code']}").count() == 1
            assert await read_testid(page, "baseline-overall-rate") == as_percent(baseline["overall"]["staff_rate"])
            assert await read_testid(page, "baseline-managers-rate") == as_percent(baseline["managers"]["managers_rate"])
            for bureau in baseline["bureaus"]:
                assert await read_testid(page, f"baseline-rate-{bureau['key']}") == as_percent(bureau["staff_rate"])
            for stream in pipeline["streams"]:
                assert as_number(await read_testid(page, f"stream-count-{stream['routing_key']}")) == stream["events"]
            assert as_number(await read_testid(page, "late-count")) == pipeline["late_completions"]["count"] == 1
            assert as_number(await read_testid(page, "unmatched-count")) == pipeline["unmatched_statements"]["count"]
        finally:
            await browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000

