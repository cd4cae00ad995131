"""While PostgreSQL is unreachable every HTTP endpoint answers 503 problem+json with Retry-After (never 500),
and nothing accepted before the outage is lost (issue 10)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dx_shared.settings import Settings
from nomination.main import create_app as create_nomination
from reporting.main import create_app as create_reporting
from tests.integration.nomination.conftest import import_sample_rosters, nominate
from tests.integration.training.conftest import completion_document, deliver, schedule
from tests.support import BusProbe, running_app
from tests.support.postgres import PrivatePostgres
from training.main import create_app as create_training

pytestmark = pytest.mark.integration


def _assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] in ("DEPENDENCY_UNAVAILABLE", "SERVICE_UNAVAILABLE")
    assert body["title_ja"] and body["title"]


async def _until_answered(request: object) -> httpx.Response:
    for _ in range(50):
        response: httpx.Response = await request()  # type: ignore[operator]
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError("still 503 after the database came back")


async def test_every_endpoint_answers_503_with_retry_after_while_the_database_is_down_and_loses_nothing(
    outage_settings: Settings, private_pg: PrivatePostgres
) -> None:
    settings = outage_settings
    async with (
        BusProbe(settings, ["nomination.#"]) as probe,
        running_app(create_nomination, settings) as nomination,
        running_app(create_training, settings) as training,
        running_app(create_reporting, settings) as reporting,
    ):
        await import_sample_rosters(nomination)
        accepted = await nominate(nomination, "001001", "self")
        assert accepted.status_code == 201, accepted.text
        assert (await schedule(training)).status_code == 201

        await asyncio.to_thread(private_pg.stop, "fast")
        _assert_retry_later(await nominate(nomination, "001002", "self"))
        _assert_retry_later(await nomination.get("/api/v1/nominations", params={"fiscal_year": 2024}))
        _assert_retry_later(await deliver(training, completion_document(), msg_id="msg_during_outage"))
        _assert_retry_later(await training.get("/api/v1/sessions", params={"fiscal_year": 2025}))
        _assert_retry_later(await reporting.get("/api/v1/reports/plan"))
        _assert_retry_later(await reporting.get("/api/v1/reports/departments.csv", params={"fiscal_year": 2024}))
        for client in (nomination, training, reporting):
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "Retry-After" in ready.headers
        await asyncio.to_thread(private_pg.start)

        listed = await _until_answered(lambda: nomination.get("/api/v1/nominations", params={"fiscal_year": 2024}))
        assert listed.status_code == 200
        assert [item["staff_id"] for item in listed.json()["items"]] == ["001001"], "the nomination accepted before"
        retried = await _until_answered(lambda: deliver(training, completion_document(), msg_id="msg_during_outage"))
        assert retried.status_code == 200, retried.text
        await probe.wait_for_type("TraineeNominated", 1, timeout=20)
        await probe.quiet(1.0)
        # At least once: a relay stopped between the broker's confirm and its commit publishes again.
        assert {event.data["staff_id"] for event in probe.of_type("TraineeNominated")} == {"001001"}
        assert len({event.id for event in probe.of_type("TraineeNominated")}) == 1
