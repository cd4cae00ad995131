"""What every browser test shares: Debian's Chromium (never a downloaded browser), where screenshots go,
and signing in through the identity provider's real login page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.idp import Idp
from tests.support.system import RunningSystem

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out, and this machine's closed network
# refuses it many times over.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def launched_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium under Playwright; the test is skipped where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in_through_the_provider(page: Page, system: RunningSystem, idp: Idp, username: str) -> None:
    await page.goto(system.url("portal", "/"))
    await page.get_by_test_id("sign-in").click()
    await page.wait_for_url(f"{idp.issuer}/**")
    await page.get_by_label("ユーザー名", exact=False).fill(username)
    await page.get_by_label("パスワード", exact=False).fill(idp.test_password)
    await page.get_by_role("button", name="サインイン", exact=False).click()
    await page.wait_for_url(f"{system.url('portal')}/**")
    await page.wait_for_load_state("networkidle")
