"""Every portal page, for every role, checked with axe-core in a real browser at 1024 px wide: no WCAG 2.x
level A or AA violation (the aim is JIS X 8341-3 AA, which follows WCAG 2.x). Also what axe cannot judge
by itself: the page is Japanese (lang="ja"), the first Tab reaches the skip link, and it leads to <main>.

axe-core is an npm package pinned in tests/browser/axe/package-lock.json and installed with `npm ci`
(no CDN); its script is evaluated in the page through the browser's debugging protocol, so the pages'
Content-Security-Policy stays as it is."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.integration.portal.conftest import OTHER_TRAINEE, OWN_DEPARTMENT, YEAR, running_portal
from tests.support.browser import ARTIFACTS, sign_in_through_the_provider
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

# Every page of the portal, per role (who may see it; the error page is what a refused role sees).
PAGES: dict[str, list[str]] = {
    "anonymous": ["/", "/verify/0000000-2026-1-AAAAAAAAAAAA"],
    "trainee": ["/", "/me", "/apply", "/office/close"],
    "department": ["/", "/department"],
    "dx_office": ["/", "/office/close", f"/?fiscal_year={YEAR - 1}"],
    "hr_office": ["/"],
    "info_policy": ["/"],
}
USERS = {
    "trainee": username_for("trainee", staff_id=OTHER_TRAINEE),
    "department": username_for("department", department=OWN_DEPARTMENT),
    "dx_office": username_for("dx_office"),
    "hr_office": username_for("hr_office"),
    "info_policy": username_for("info_policy"),
}


def axe_source() -> str:
    """The vendored axe-core, installed from the lock file when it is not there yet (as deploy/idp does)."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (apt-get install nodejs npm): axe-core cannot be installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AXE_DIR, check=True,
                       timeout=300)
    return AXE_SCRIPT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-a11y-logs") as system:
        yield system


async def violations_on(page: Page, source: str) -> list[dict[str, Any]]:
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(source)
    result = await page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))})); }",
        WCAG_A_AA,
    )
    found: list[dict[str, Any]] = result
    return found


async def keyboard_reaches_the_skip_link_first(page: Page) -> bool:
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("Tab")
    return bool(await page.evaluate(
        "() => { const a = document.activeElement; return !!a && a.classList.contains('skip')"
        " && a.getAttribute('href') === '#main' && !!document.querySelector('main#main')"
        " && getComputedStyle(a).outlineStyle !== 'none'; }"
    ))


async def test_every_portal_page_for_every_role_has_no_wcag_a_or_aa_violation(
    browser: Browser, portal_system: RunningSystem, idp: Idp
) -> None:
    source = axe_source()
    found: dict[str, list[dict[str, Any]]] = {}
    for role, paths in PAGES.items():
        context = await browser.new_context(viewport={"width": 1024, "height": 800}, locale="ja-JP")
        page = await context.new_page()
        if role != "anonymous":
            await sign_in_through_the_provider(page, portal_system, idp, USERS[role])
        for path in paths:
            await page.goto(portal_system.url("portal", path))
            await page.wait_for_load_state("networkidle")
            where = f"{role} {path}"
            assert await page.get_attribute("html", "lang") == "ja", where
            assert await page.title(), f"{where}: a page title"
            assert await keyboard_reaches_the_skip_link_first(page), f"{where}: the first Tab reaches 本文へ移動"
            violations = await violations_on(page, source)
            if violations:
                found[where] = violations
        await context.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "portal-accessibility.json").write_text(json.dumps(found, ensure_ascii=False, indent=2), "utf-8")
    assert not found, json.dumps(found, ensure_ascii=False, indent=2)[:6000]

