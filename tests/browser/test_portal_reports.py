"""報告・集計 and 年度締め in a real browser (Debian's Chromium): the DX office drills down from the bureaus
to a department to a person, a department head reads their people's progress, and the DX office closes
last fiscal year through the pre-close checklist, which lists the decision still pending on it.
Screenshots in test-artifacts/: portal-drilldown.png, portal-drilldown-department.png,
portal-department-progress.png, portal-office-close-checklist.png, portal-office-close.png."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.integration.portal.conftest import (
    COLLEAGUE,
    OTHER_DEPARTMENT,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    running_portal,
)
from tests.integration.portal.reports_data import LAST_YEAR, load_report_facts
from tests.support.browser import ARTIFACTS, sign_in_through_the_provider
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-reports-browser-logs") as system:
        await load_report_facts(system)
        yield system


async def test_the_dx_office_drills_down_from_a_bureau_to_a_person(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("dx_office"))
    await page.get_by_test_id("nav-reports").click()
    await page.wait_for_url("**/reports")
    await page.get_by_role("link", name="企画政策部").click()
    await page.get_by_test_id(f"department-link-{OWN_DEPARTMENT}").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_test_id(f"person-row-{TRAINEE}").count() == 1
    await page.get_by_label("推薦区分").select_option("self")
    await page.get_by_test_id("filter-submit").click()
    await page.wait_for_url(f"**/reports/departments/{OWN_DEPARTMENT}?*slot=self*")
    assert await page.get_by_test_id(f"person-row-{TRAINEE}").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-drilldown-department.png"), full_page=True)

    await page.get_by_test_id(f"person-link-{TRAINEE}").click()
    await page.wait_for_url(f"**/reports/people/{TRAINEE}?*")
    assert await page.get_by_test_id(f"trainee-year-{YEAR}").count() == 1
    assert await page.get_by_test_id("person-required-sessions").count() == 1
    crumbs = await page.get_by_test_id("breadcrumbs").inner_text()
    assert "部局一覧" in crumbs and TRAINEE in crumbs
    await page.screenshot(path=str(ARTIFACTS / "portal-drilldown.png"), full_page=True)


async def test_a_department_head_sees_their_peoples_progress_and_cannot_open_another_department(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp,
                                       username_for("department", department=OWN_DEPARTMENT))
    await page.get_by_test_id("nav-department-progress").click()
    await page.wait_for_url("**/department/progress")
    assert await page.get_by_test_id(f"person-row-{TRAINEE}").count() == 1
    assert await page.get_by_test_id("department-baseline-rate").count() == 1
    assert await page.get_by_test_id("behind-rule").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-department-progress.png"), full_page=True)
    refused = await page.goto(portal_system.url("portal", f"/reports/departments/{OTHER_DEPARTMENT}"))
    assert refused is not None and refused.status == 403


async def test_the_dx_office_closes_last_year_through_the_checklist(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("dx_office"))
    await page.goto(portal_system.url("portal", f"/office/close?fiscal_year={LAST_YEAR}"))
    for item in ("check-missing", "check-pending", "check-unmatched", "check-dead-letters"):
        assert await page.get_by_test_id(item).count() == 1
    assert await page.get_by_test_id(f"pending-{COLLEAGUE}").count() == 1
    assert await page.get_by_test_id("dead-letter-queue").count() >= 1

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-office-close-checklist.png"), full_page=True)

    await page.get_by_label("判定を確定します", exact=False).check()
    await page.get_by_test_id("close-submit").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_test_id("closed").count() == 1
    assert await page.get_by_test_id(f"pending-{COLLEAGUE}").count() == 0, "closing decided the waiting one"
    await page.screenshot(path=str(ARTIFACTS / "portal-office-close.png"), full_page=True)
