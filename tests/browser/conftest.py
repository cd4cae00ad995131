"""The browser every portal test drives (tests.support.browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.support.browser import launched_chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in launched_chromium():
        yield launched
