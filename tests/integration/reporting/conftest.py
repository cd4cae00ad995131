"""The reporting service started in-process against the test's own database and bus names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from dx_shared.settings import Settings
from reporting.main import create_app
from tests.support.services import running_app


@pytest.fixture
async def reporting(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, settings) as client:
        yield client
