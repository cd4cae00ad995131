"""`./dx up` on existing data: the demo loader run a second time succeeds (already done is success), and
on the real clock it sends only what an office could have recorded by today (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dx_shared.calendar import fiscal_year_has_ended, fiscal_year_of
from dx_shared.settings import Settings
from dx_tools.demo import load
from tests.support.system import RunningSystem, running_system

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def system(settings: Settings) -> Iterator[RunningSystem]:
    with running_system(settings, ARTIFACTS / "e2e-demo-logs") as running:
        yield running


async def test_the_demo_loads_twice_on_existing_data_and_holds_nothing_from_the_future(system: RunningSystem) -> None:
    now = datetime.now(UTC)
    current = fiscal_year_of(now)
    settings = system.settings.model_copy(update={f"{service}_url": url for service, url in system.urls.items()})
    years = range(current - 1, current + 2)  # last year (closed), this year so far, and next year (skipped)
    await load(settings, 2024, years, quiet=True)
    again = await load(settings, 2024, years, quiet=True)
    assert again.get("FISCAL_YEAR_CLOSED", 0) > 0, "the second run met last year's closing and went on"
    async with system.client(timeout=60) as http:
        completions = (
            await http.get(system.url("training", "/api/v1/completions"), params={"limit": 10000})
        ).json()
        assert completions
        assert max(datetime.fromisoformat(c["occurred_at"]) for c in completions) <= now
        assert {c["fiscal_year"] for c in completions} <= {current - 1, current}
        still_open = await http.post(system.url("progression", f"/api/v1/fiscal-years/{current}/close"))
        if not fiscal_year_has_ended(current, datetime.now(UTC)):
            assert still_open.json()["code"] == "FISCAL_YEAR_NOT_ENDED"
        closed_before = await http.post(system.url("progression", f"/api/v1/fiscal-years/{current - 1}/close"))
        assert closed_before.json()["code"] == "FISCAL_YEAR_ALREADY_CLOSED"
