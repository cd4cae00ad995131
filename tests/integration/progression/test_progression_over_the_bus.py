"""The stage rules through the real broker and database, and the two HTTP endpoints."""

from __future__ import annotations

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.progression.conftest import pool_of, settled
from tests.integration.progression.progression_events import (
    completed,
    curriculum,
    nominated,
    standing_decisions,
)
from tests.support.bus import BusProbe, publish_event

pytestmark = pytest.mark.integration


async def test_a_trainee_advances_after_completing_stage_one_and_can_read_why(
    settings: Settings, progression: httpx.AsyncClient
) -> None:
    facts = [
        curriculum(2024, 1, ["s1", "s2"]),
        nominated("100001", 2024, "recommended"),
        completed("100001", "s1", 2024),
        completed("100001", "s2", 2024),
        nominated("100001", 2025),
    ]
    async with BusProbe(settings, ["progression.#"]) as probe:
        for fact in facts:
            await publish_event(settings, fact)
        await settled(progression, probe, facts)

    assert standing_decisions(probe.events) == {
        ("100001", 2024, "StageAdvanced", 0, 1),
        ("100001", 2024, "StageCompleted", 1),
        ("100001", 2025, "StageAdvanced", 1, 2),
    }
    [advanced] = [e for e in probe.of_type("StageAdvanced") if e.data["fiscal_year"] == 2025]
    assert advanced.subject == "100001"
    assert advanced.data["rule_version"] == "policy-2024-02-29/1"
    assert facts[2].id in advanced.data["evidence"] and facts[4].id in advanced.data["evidence"]

    response = await progression.get("/api/v1/trainees/100001")
    assert response.status_code == 200
    body = response.json()
    assert body["current_stage"] == 2
    year_2025 = body["years"][1]
    assert (year_2025["decision"], year_2025["stage"], year_2025["status"]) == ("advanced", 2, "provisional")
    assert year_2025["decision_event_id"] == advanced.id
    assert year_2025["explanation"]["ja"] == (
        "令和6年度にステージ1（業務効率化）を修了したため、令和7年度はステージ2（業務改善）に進みました。"
    )
    assert year_2025["explanation"]["en"] == (
        "Completed stage 1 (business efficiency) in FY2024, so advanced to stage 2 (business improvement) in FY2025."
    )
    assert body["years"][0]["completed"] is True


async def test_closing_a_fiscal_year_repeats_the_stage_of_those_still_waiting_and_is_final(
    settings: Settings, progression: httpx.AsyncClient
) -> None:
    facts = [curriculum(2024, 1, ["s1"]), nominated("100002", 2024), nominated("100002", 2025)]
    async with BusProbe(settings, ["progression.#"]) as probe:
        for fact in facts:
            await publish_event(settings, fact)
        await settled(progression, probe, facts)
        pending = (await progression.get("/api/v1/trainees/100002")).json()["years"][1]

        closing = await progression.post("/api/v1/fiscal-years/FY2024/close", json={"actor": "dx-office"})
        await probe.wait_for_type("StageRepeated")
        again = await progression.post("/api/v1/fiscal-years/2024/close")
        await probe.quiet(0.7)

    assert (pending["decision"], pending["stage"], pending["awaiting_fiscal_year"]) == ("pending", None, 2024)
    assert closing.status_code == 201, closing.text
    assert closing.json()["fiscal_year"] == 2024
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "FISCAL_YEAR_ALREADY_CLOSED"
    assert len(probe.of_type("FiscalYearClosed")) == 1
    assert standing_decisions(probe.events) == {
        ("100002", 2024, "StageAdvanced", 0, 1),
        ("100002", 2025, "StageRepeated", 1, "not_completed"),
    }
    years = (await progression.get("/api/v1/trainees/100002")).json()["years"]
    assert [y["status"] for y in years] == ["final", "provisional"]
    assert years[1]["explanation"]["ja"].startswith("令和6年度にステージ1（業務効率化）を修了しないまま")
    stored = await pool_of(progression).fetchval("SELECT count(*) FROM fiscal_year_closing")
    assert stored == 1


async def test_an_unknown_trainee_is_a_problem_naming_the_rule(progression: httpx.AsyncClient) -> None:
    response = await progression.get("/api/v1/trainees/999999")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "UNKNOWN_TRAINEE"


async def test_an_unreadable_fiscal_year_is_refused(progression: httpx.AsyncClient) -> None:
    response = await progression.post("/api/v1/fiscal-years/next-year/close")

    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_FISCAL_YEAR"


async def test_a_person_who_completed_stage_five_shows_finished_in_every_later_year(
    settings: Settings, progression: httpx.AsyncClient
) -> None:
    facts = []
    for fiscal_year, stage in zip(range(2020, 2025), range(1, 6), strict=True):
        session = f"s{stage}-{fiscal_year}"
        facts += [curriculum(fiscal_year, stage, [session]), nominated("100009", fiscal_year),
                  completed("100009", session, fiscal_year)]
    facts += [nominated("100009", 2025), curriculum(2025, 5, ["s5-2025"])]
    async with BusProbe(settings, ["progression.#"]) as probe:
        for fact in facts:
            await publish_event(settings, fact)
        await settled(progression, probe, facts)

    body = (await progression.get("/api/v1/trainees/100009")).json()

    assert body["finished"] is True
    assert [(y["fiscal_year"], y["stage"], y["finished"]) for y in body["years"]] == [
        (2020, 1, False), (2021, 2, False), (2022, 3, False), (2023, 4, False), (2024, 5, True), (2025, 5, True),
    ]
