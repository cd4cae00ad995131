"""Two whole journeys in a real browser (Debian's Chromium), signed in through the identity provider:

- a staff member applies for the self slot (自薦), completes stage 1 (the e-learning platform's signed
  webhook) and downloads the 修了証 PDF from their page;
- a department head nominates one of their people for the recommended slot, is refused a second
  recommended nomination with the Japanese message on the page, and withdraws the first with a reason.

Screenshots: test-artifacts/portal-staff-apply.png, portal-staff-certificate.png, portal-head-nominate.png,
portal-head-refused.png, portal-head-withdrawn.png."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page
from pypdf import PdfReader

from dx_shared.calendar import fiscal_year_label_ja, reiwa_date_ja, reiwa_year
from tests.browser.test_portal_accessibility import axe_source, violations_on
from tests.integration.portal.conftest import (
    COLLEAGUE,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    complete_stage_one,
    running_portal,
)
from tests.support.browser import ARTIFACTS, sign_in_through_the_provider
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

NEWCOMER = "2600004"
SESSION = f"R{reiwa_year(YEAR)}-S1-EL-JOURNEY"


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-journey-logs") as system:
        roster = (
            "職員番号,氏名,所属コード\n"
            f"{TRAINEE},職員 一,{OWN_DEPARTMENT}\n{COLLEAGUE},職員 三,{OWN_DEPARTMENT}\n"
            f"{NEWCOMER},職員 四,{OWN_DEPARTMENT}\n2600002,職員 二,200200\n"
        )
        async with system.client(timeout=30) as http:
            imported = await http.post(system.url("nomination", "/api/v1/staff/import"), params={"fiscal_year": YEAR},
                                       content=roster.encode(), headers={"content-type": "text/csv"})
            assert imported.status_code == 200, imported.text
        yield system


async def new_page(browser: Browser) -> Page:
    return await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")



async def test_a_staff_member_applies_for_the_self_slot_completes_stage_one_and_downloads_the_certificate(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await new_page(browser)
    await sign_in_through_the_provider(page, portal_system, idp, username_for("trainee", staff_id=COLLEAGUE))
    await page.get_by_test_id("nav-apply").click()
    await page.get_by_label("上のきまりを読み", exact=False).check()
    await page.get_by_test_id("apply-submit").click()
    await page.wait_for_url("**/apply?done=1")
    mine = page.get_by_test_id("my-nominations")
    assert "自薦・有効" in await mine.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-staff-apply.png"), full_page=True)

    completed_at = await asyncio.to_thread(complete_stage_one, portal_system, COLLEAGUE, SESSION)
    link = f"/me/certificates/{YEAR}/1.pdf"
    deadline = time.monotonic() + 60
    while True:  # reporting shows the completion once it has the events
        await page.goto(portal_system.url("portal", "/me"))
        if await page.locator(f'a[href="{link}"]').count() or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    certificate_link = page.locator(f'a[href="{link}"]')
    assert await certificate_link.count() == 1, "the page offers the 修了証 of the completed stage"
    required = await page.get_by_test_id("required-sessions").inner_text()
    assert "ステージ1 業務効率化 e-ラーニング" in required and "受講済み" in required, "sessions by their titles"
    await page.screenshot(path=str(ARTIFACTS / "portal-staff-certificate.png"), full_page=True)
    assert await violations_on(page, axe_source()) == [], "the page with a certificate passes axe (WCAG A/AA)"

    async with page.expect_download() as download_info:
        await certificate_link.click()
    download = await download_info.value
    assert download.suggested_filename == f"修了証_{fiscal_year_label_ja(YEAR)}_ステージ1.pdf"
    saved = await download.path()
    assert saved is not None and saved.read_bytes().startswith(b"%PDF")
    text = PdfReader(io.BytesIO(saved.read_bytes())).pages[0].extract_text().replace(" ", "").replace("　", "")
    assert "修了証" in text and COLLEAGUE in text and "業務効率化" in text
    assert fiscal_year_label_ja(YEAR) in text and reiwa_date_ja(completed_at.date()) in text


async def test_a_department_head_nominates_is_refused_a_second_recommended_nomination_and_withdraws(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await new_page(browser)
    await sign_in_through_the_provider(page, portal_system, idp, username_for("department", department=OWN_DEPARTMENT))
    await page.get_by_test_id("nav-department").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_test_id("recommended-free").count() == 1

    await page.get_by_label("推薦する職員").select_option(TRAINEE)
    await page.get_by_test_id("nominate-submit").click()
    await page.wait_for_load_state("networkidle")
    holder = page.get_by_test_id("recommended-holder")
    assert TRAINEE in await holder.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "portal-head-nominate.png"), full_page=True)

    await page.get_by_label("推薦する職員").select_option(NEWCOMER)
    await page.get_by_test_id("nominate-submit").click()
    await page.wait_for_load_state("networkidle")
    refusal = page.get_by_test_id("refusal")
    assert await refusal.count() == 1
    message = await refusal.inner_text()
    assert "推薦枠" in message and "使用済み" in message, message
    assert await refusal.get_attribute("role") == "alert", "announced to screen readers"
    assert TRAINEE in await page.get_by_test_id("recommended-holder").inner_text(), "nothing changed"
    await page.screenshot(path=str(ARTIFACTS / "portal-head-refused.png"), full_page=True)
    assert await violations_on(page, axe_source()) == [], "the refusal page passes axe (WCAG A/AA)"

    await page.get_by_label("取下げの理由").fill("本人の異動が決まったため")
    await page.get_by_test_id("withdraw-submit").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_test_id("recommended-free").count() == 1, "withdrawing frees the slot (N1)"
    assert "本人の異動が決まったため" in await page.content()
    await page.screenshot(path=str(ARTIFACTS / "portal-head-withdrawn.png"), full_page=True)
