"""People sign in to the portal in a real browser (Debian's Chromium) through the identity provider's
login page, see only what their role may see, and sign out. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.integration.portal.conftest import (
    OTHER_DEPARTMENT,
    OTHER_TRAINEE,
    OWN_DEPARTMENT,
    TRAINEE,
    running_portal,
)
from tests.support.browser import ARTIFACTS, sign_in_through_the_provider
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-browser-logs") as system:
        yield system


async def sign_out(page: Page, system: RunningSystem, idp: Idp) -> None:
    await page.get_by_test_id("sign-out").click()
    await page.wait_for_url(f"{idp.issuer}/**")
    confirm = page.get_by_role("button", name="サインアウト / Sign out")
    if await confirm.count():
        await confirm.click()
    await page.wait_for_url(f"{system.url('portal')}/**")
    assert await page.get_by_test_id("sign-in").count() == 1
    await page.goto(system.url("portal", "/me"))
    await page.wait_for_url(f"{idp.issuer}/**")  # signed out: the portal sends the person to sign in again


async def test_a_trainee_signs_in_sees_only_their_own_progress_and_signs_out(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("trainee", staff_id=TRAINEE))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-trainee.png"), full_page=True)

    assert await page.get_by_test_id("trainee-home").count() == 1
    assert (await page.get_by_test_id("signed-in-staff-id").inner_text()).strip() == TRAINEE
    assert await page.get_by_test_id("operator-panel").count() == 0
    assert await page.get_by_test_id("missing-panel").count() == 0
    assert await page.get_by_test_id("nav-department").count() == 0
    assert await page.get_by_test_id("nav-close").count() == 0
    text = await page.content()
    assert OTHER_DEPARTMENT not in text and OTHER_TRAINEE not in text

    await page.get_by_test_id("nav-apply").click()
    await page.get_by_label("上のきまりを読み", exact=False).check()
    await page.screenshot(path=str(ARTIFACTS / "portal-trainee-apply.png"), full_page=True)
    await sign_out(page, portal_system, idp)


async def test_a_department_head_signs_in_sees_only_their_department_and_signs_out(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("department", department=OWN_DEPARTMENT))
    await page.screenshot(path=str(ARTIFACTS / "portal-department-head.png"), full_page=True)

    assert await page.get_by_test_id(f"department-row-{OWN_DEPARTMENT}").count() == 1
    assert await page.get_by_test_id(f"department-row-{OTHER_DEPARTMENT}").count() == 0
    assert await page.get_by_test_id(f"missing-department-{OTHER_DEPARTMENT}").count() == 0
    assert await page.get_by_test_id("operator-panel").count() == 0
    assert await page.get_by_test_id("nav-close").count() == 0

    await page.get_by_test_id("nav-department").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_test_id("recommended-free").count() == 1
    await page.screenshot(path=str(ARTIFACTS / "portal-department-page.png"), full_page=True)
    await sign_out(page, portal_system, idp)
