"""Printing the dashboard in a real browser (Debian's Chromium, print media, the page size the stylesheet
asks for): the 育成計画 table fits on one A4 landscape page with its 令和 labels, the menu and forms left
out. Saves test-artifacts/plan-print.pdf (and plan-print.png when pdftoppm is installed)."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import unicodedata
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import async_playwright
from pypdf import PdfReader

from dx_shared.calendar import fiscal_year_label_ja
from tests.integration.portal.conftest import running_portal
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = pytest.mark.integration

A4_LANDSCAPE = (842, 595)


@pytest.fixture
async def system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "print-logs") as running:
        yield running


def squeezed(text: str) -> str:
    """The page's text without spaces; NFKC folds the CJK radicals some fonts' glyphs extract as (⽬ → 目)."""
    return unicodedata.normalize("NFKC", text).replace(" ", "").replace("\n", "")


async def test_the_plan_table_prints_on_one_a4_landscape_page(system: RunningSystem, idp: Idp) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
            await page.goto(system.url("portal", "/auth/login?next=%2F"))
            await page.get_by_label("ユーザー名", exact=False).fill(username_for("dx_office"))
            await page.get_by_label("パスワード", exact=False).fill(idp.test_password)
            await page.get_by_role("button", name="サインイン", exact=False).click()
            await page.wait_for_url(f"{system.url('portal')}/")
            await page.emulate_media(media="print")
            pdf = await page.pdf(prefer_css_page_size=True, print_background=False)
        finally:
            await browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "plan-print.pdf").write_bytes(pdf)

    pages = PdfReader(io.BytesIO(pdf)).pages
    texts = [squeezed(p.extract_text()) for p in pages]
    for p in pages:
        assert (round(float(p.mediabox.width)), round(float(p.mediabox.height))) == A4_LANDSCAPE
    holding = [index for index, text in enumerate(texts) if squeezed("育成計画（計画と実績）") in text]
    assert len(holding) == 1, "the plan table's title is on one page"
    plan_page = texts[holding[0]]
    for year in range(2024, 2029):
        assert fiscal_year_label_ja(year) in plan_page, year
    async with system.client(timeout=15) as http:
        plan = (await http.get(system.url("reporting", "/api/v1/reports/plan"))).json()
    for label in ["累計", "新規DX推進員", "目標", "修了", *(stage["name_ja"] for stage in plan["stages"])]:
        assert squeezed(label) in plan_page, label
    assert all("サインアウト" not in text and "Excelでダウンロード" not in text for text in texts), \
        "the menu and the download panel are not printed"

    if shutil.which("pdftoppm"):
        await asyncio.to_thread(subprocess.run, ["pdftoppm", "-png", "-r", "50", "-f", str(holding[0] + 1), "-l", str(holding[0] + 1),
                        "-singlefile", str(ARTIFACTS / "plan-print.pdf"), str(ARTIFACTS / "plan-print")],
                                check=True, timeout=60)
