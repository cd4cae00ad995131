"""An office imports a roster in a real browser (Debian's Chromium): chooses the file, reads the preview
(rows added, changed, removed; nothing recorded yet), confirms with the keyboard, and sees it imported.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.integration.portal.conftest import (
    COLLEAGUE,
    OTHER_DEPARTMENT,
    OTHER_TRAINEE,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    running_portal,
)
from tests.integration.portal.test_portal_office import deliver_unknown_person
from tests.support.browser import ARTIFACTS, sign_in_through_the_provider
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

NEWCOMER = "2600020"
ROSTER = (
    "職員番号,氏名,所属コード,管理職\n"
    f"{TRAINEE},職員 一,{OWN_DEPARTMENT},はい\n"
    f"{OTHER_TRAINEE},職員 二,{OTHER_DEPARTMENT},いいえ\n"
    f"{NEWCOMER},職員 二十,{OWN_DEPARTMENT},いいえ\n"
).encode("cp932")


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-office-browser-logs") as system:
        yield system


async def roster_of(system: RunningSystem, department: str) -> set[str]:
    async with system.client(timeout=15) as http:
        response = await http.get(system.url("nomination", f"/api/v1/departments/{department}/staff"),
                                  params={"fiscal_year": YEAR})
    assert response.status_code == 200, response.text
    return {person["staff_id"] for person in response.json()}


async def test_an_office_imports_a_roster_after_reading_its_preview(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("hr_office"))
    await page.get_by_test_id("nav-office").click()
    await page.get_by_role("link", name="職員名簿の取込み").click()
    await page.wait_for_url("**/office/imports/staff")

    await page.get_by_label("年度").select_option(str(YEAR))
    await page.get_by_label("取り込むファイル（CSV）").set_input_files(
        {"name": "職員名簿.csv", "mimeType": "text/csv", "buffer": ROSTER})
    async with page.expect_navigation():
        await page.get_by_test_id("import-preview-submit").click()

    preview = page.get_by_test_id("import-preview")
    assert await preview.count() == 1
    assert (await page.get_by_test_id("count-added").inner_text()).strip() == "1"
    assert (await page.get_by_test_id("count-changed").inner_text()).strip() == "1"
    assert (await page.get_by_test_id("count-removed").inner_text()).strip() == "1"
    assert NEWCOMER in await page.get_by_test_id("added-rows").inner_text()
    assert COLLEAGUE in await page.get_by_test_id("removed-rows").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "portal-office-import-preview.png"), full_page=True)
    assert await roster_of(portal_system, OWN_DEPARTMENT) == {TRAINEE, COLLEAGUE}, "the preview recorded nothing"

    await page.get_by_test_id("import-confirm").focus()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")

    assert await page.get_by_test_id("import-applied").count() == 1
    await page.screenshot(path=str(ARTIFACTS / "portal-office-import-done.png"), full_page=True)
    assert await roster_of(portal_system, OWN_DEPARTMENT) == {TRAINEE, NEWCOMER}


async def test_the_information_policy_office_reads_the_merged_audit_trail(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    async with portal_system.client(timeout=15) as http:
        refused = await http.post(portal_system.url("training", "/api/v1/completions/waive"),
                                  json={"session_id": "S-NONE", "staff_id": TRAINEE, "reason": "確認"})
    assert refused.status_code == 404
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("info_policy"))
    await page.get_by_test_id("nav-office").click()
    await page.get_by_role("link", name="監査記録").first.click()
    await page.wait_for_url("**/office/audit")
    await page.get_by_label("サービス", exact=True).select_option("training")
    async with page.expect_navigation():
        await page.get_by_role("button", name="絞り込む").click()
    rows = await page.get_by_test_id("audit-rows").inner_text()
    assert "/api/v1/completions/waive" in rows
    await page.screenshot(path=str(ARTIFACTS / "portal-office-audit.png"), full_page=True)
    async with page.expect_download() as download_info:
        await page.get_by_test_id("audit-csv-training").click()
    download = await download_info.value
    path = await download.path()
    assert path is not None
    assert "/api/v1/completions/waive" in path.read_bytes().decode("utf-8-sig")


async def test_an_office_registers_a_session_and_matches_an_unmatched_report_by_hand(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    page = await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ja-JP")
    await sign_in_through_the_provider(page, portal_system, idp, username_for("dx_office"))
    await page.goto(portal_system.url("portal", "/office/sessions"))
    await page.get_by_label("研修名", exact=True).fill("業務効率化 eラーニング")
    await page.get_by_label("実施方法", exact=True).select_option("e_learning")
    await page.get_by_label("対象者", exact=True).select_option("promoter")
    async with page.expect_navigation():
        await page.get_by_test_id("session-submit").click()
    assert await page.get_by_test_id("session-created").count() == 1
    await page.screenshot(path=str(ARTIFACTS / "portal-office-sessions.png"), full_page=True)
    session_id = (await page.get_by_test_id("session-created").inner_text()).split("研修ID ")[1].rstrip("）。")

    await asyncio.to_thread(deliver_unknown_person, portal_system, session_id, "26OOOO1")
    await page.goto(portal_system.url("portal", "/office/unmatched"))
    assert "26OOOO1" in await page.get_by_test_id("unmatched-queue").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "portal-office-unmatched.png"), full_page=True)
    await page.get_by_label("照合する職員番号").fill(TRAINEE)
    async with page.expect_navigation():
        await page.get_by_test_id("match-submit").click()
    assert await page.get_by_test_id("unmatched-done").count() == 1
    assert await page.get_by_test_id("unmatched-empty").count() == 1
    assert TRAINEE in await page.get_by_test_id("unmatched-resolved").inner_text()
