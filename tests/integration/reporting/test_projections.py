"""Each projection against a hand-computed expectation, fed through the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import pytest

from dx_shared.database import create_pool
from reporting import handlers
from tests.integration.reporting.event_factory import (
    advanced,
    cancelled,
    closed,
    completed_stage,
    curriculum,
    departments,
    feed,
    nominated,
    repeated,
    retracted,
    roster,
    session,
    session_completed,
    unmatched,
    waived,
    withdrawn,
)

pytestmark = pytest.mark.integration

DEPARTMENTS_2024 = departments(
    2024, ("D01", "財政課", "総務部"), ("D02", "人事課", "総務部"), ("D03", "東青地域県民局", "地域県民局")
)


def cell(plan: dict, stage: int, fiscal_year: int) -> dict:
    row = next(r for r in plan["stages"] if r["stage"] == stage)
    return next(c for c in row["cells"] if c["fiscal_year"] == fiscal_year)


async def test_plan_counts_entries_and_completions_and_a_withdrawal_undoes_its_count(settings, reporting) -> None:
    await feed(settings, reporting, [
        nominated("N1", "S1", "D01", 2024, "recommended"), advanced("S1", 2024, 0, 1),
        nominated("N2", "S2", "D02", 2024, "recommended"), advanced("S2", 2024, 0, 1),
        nominated("N3", "S3", "D03", 2024, "self"), advanced("S3", 2024, 0, 1),
        completed_stage("S1", 2024, 1),
        nominated("N4", "S1", "D01", 2025, "self"), advanced("S1", 2025, 1, 2),
        nominated("N5", "S2", "D02", 2025, "self"), repeated("S2", 2025, 1),
        withdrawn("N3", "S3", 2024), cancelled("S3", 2024, 1),
    ])

    plan = (await reporting.get("/api/v1/reports/plan?from=FY2024&to=R7")).json()

    assert cell(plan, 1, 2024) == {"fiscal_year": 2024, "plan": None, "entered": 2, "completed": 1, "new": 2}
    assert cell(plan, 1, 2025) == {"fiscal_year": 2025, "plan": None, "entered": 1, "completed": 0, "new": 0}
    assert cell(plan, 2, 2025) == {"fiscal_year": 2025, "plan": None, "entered": 1, "completed": 0, "new": 0}
    assert [y["actual"] for y in plan["new_promoters"]["per_year"]] == [2, 0]
    assert plan["new_promoters"]["cumulative"] == {"target": 1000, "actual": 2, "share": 0.002}


async def test_the_same_events_delivered_twice_count_once(settings, reporting) -> None:
    events = [
        DEPARTMENTS_2024,
        roster(2024, ("S1", "D01", False), ("S2", "D01", True)),
        session("B1", 2024, "all_staff"),
        nominated("N1", "S1", "D01", 2024, "recommended"), advanced("S1", 2024, 0, 1),
        session_completed("C1", "B1", "S1", 2024), completed_stage("S1", 2024, 1),
    ]

    await feed(settings, reporting, events, copies=2)

    plan = (await reporting.get("/api/v1/reports/plan")).json()
    assert cell(plan, 1, 2024) == {"fiscal_year": 2024, "plan": None, "entered": 1, "completed": 1, "new": 1}
    departments_report = (await reporting.get("/api/v1/reports/departments?fiscal_year=2024")).json()
    d01 = next(d for d in departments_report["departments"] if d["code"] == "D01")
    assert (d01["recommended"], d01["trainees"], d01["completions"]) == (1, 1, 1)
    baseline = (await reporting.get("/api/v1/reports/baseline?fiscal_year=2024")).json()
    assert (baseline["overall"]["staff"], baseline["overall"]["staff_done"]) == (2, 1)
    pipeline = (await reporting.get("/api/v1/reports/pipeline")).json()
    assert pipeline["events_total"] == len(events)


async def test_a_completion_no_longer_counts_once_progression_corrects_its_decision_in_either_order(
    settings, reporting
) -> None:
    first_s1, first_s2, standing_s3 = advanced("S1", 2024, 0, 1), advanced("S2", 2024, 0, 1), advanced("S3", 2024, 0, 1)
    late_s1, late_s2 = completed_stage("S1", 2024, 1, decision=first_s1.id), completed_stage(
        "S2", 2024, 1, decision=first_s2.id)
    corrected_s1 = advanced("S1", 2024, 0, 1, corrects=first_s1.id)
    corrected_s2 = advanced("S2", 2024, 0, 1, corrects=first_s2.id)
    await feed(settings, reporting, [
        DEPARTMENTS_2024,
        nominated("N1", "S1", "D01", 2024, "recommended"), nominated("N2", "S2", "D02", 2024, "recommended"),
        nominated("N3", "S3", "D03", 2024, "recommended"),
        first_s1, late_s1, corrected_s1,
        first_s2, corrected_s2, late_s2,
        standing_s3, completed_stage("S3", 2024, 1, decision=standing_s3.id),
    ], copies=2)

    plan = (await reporting.get("/api/v1/reports/plan")).json()
    departments_report = (await reporting.get("/api/v1/reports/departments?fiscal_year=2024")).json()
    s1 = (await reporting.get("/api/v1/reports/trainees/S1")).json()["years"][0]

    assert cell(plan, 1, 2024) == {"fiscal_year": 2024, "plan": None, "entered": 3, "completed": 1, "new": 3}
    assert plan["new_promoters"]["per_year"][0]["actual"] == 3
    completions = {d["code"]: d["completions"] for d in departments_report["departments"]}
    assert completions == {"D01": 0, "D02": 0, "D03": 1}
    assert (s1["stage"], s1["status"], s1["completed_stage"]) == (1, "in_training", None)


async def test_a_retracted_decision_is_undecided_and_a_withdrawn_year_is_cancelled_even_if_never_announced(
    settings, reporting
) -> None:
    decided = advanced("S1", 2025, 0, 1)
    await feed(settings, reporting, [
        DEPARTMENTS_2024,
        nominated("N1", "S1", "D01", 2025, "self"), decided, retracted("S1", 2025, decided.id),
        nominated("N2", "S2", "D02", 2025, "self"), withdrawn("N2", "S2", 2025),  # never decided
    ])

    s1 = (await reporting.get("/api/v1/reports/trainees/S1")).json()["years"][0]
    s2 = (await reporting.get("/api/v1/reports/trainees/S2")).json()["years"][0]
    plan = (await reporting.get("/api/v1/reports/plan?from=2025&to=2025")).json()

    assert (s1["stage"], s1["status"], s1["status_ja"], s1["decision"]) == (None, "not_decided", "判定待ち", None)
    assert (s2["stage"], s2["status"], s2["status_ja"], s2["decision"]) == (None, "cancelled", "取消し", "cancelled")
    assert cell(plan, 1, 2025)["entered"] == 0


async def test_department_report_lists_departments_still_missing_a_recommended_nominee(settings, reporting) -> None:
    await feed(settings, reporting, [
        DEPARTMENTS_2024,
        nominated("N1", "S1", "D01", 2024, "recommended"),
        nominated("N2", "S2", "D01", 2024, "self"),
        nominated("N3", "S3", "D02", 2024, "recommended"),
        nominated("N4", "S4", "D03", 2024, "self"),
        withdrawn("N3", "S3", 2024),
    ])

    report = (await reporting.get("/api/v1/reports/departments?fiscal_year=令和6年度")).json()

    by_code = {d["code"]: d for d in report["departments"]}
    assert (by_code["D01"]["recommended_slot_used"], by_code["D01"]["self_slot"], by_code["D01"]["trainees"]) == (
        True, 1, 2)
    assert by_code["D02"]["recommended_slot_used"] is False
    assert by_code["D02"]["trainees"] == 0
    assert [d["code"] for d in report["missing_nomination"]] == ["D02", "D03"]  # the imported list's order
    assert report["totals"]["trainees"] == 3


async def test_a_person_who_changes_department_counts_in_each_years_own_department(settings, reporting) -> None:
    await feed(settings, reporting, [
        DEPARTMENTS_2024,
        departments(2025, ("D01", "財政課", "総務部"), ("D03", "東青地域県民局", "地域県民局")),
        roster(2024, ("S1", "D01", True), ("S2", "D01", False)),
        roster(2025, ("S1", "D03", True), ("S2", "D01", False)),
        session("B24", 2024, "all_staff"), session("M24", 2024, "managers"), session("B25", 2025, "all_staff"),
        session_completed("C1", "B24", "S1", 2024), session_completed("C2", "M24", "S1", 2024),
        session_completed("C3", "B25", "S1", 2025),
        nominated("N1", "S1", "D01", 2024, "recommended"), advanced("S1", 2024, 0, 1),
        completed_stage("S1", 2024, 1),
        nominated("N2", "S1", "D03", 2025, "self"), advanced("S1", 2025, 1, 2), completed_stage("S1", 2025, 2),
    ])

    baseline_2024 = (await reporting.get("/api/v1/reports/baseline?fiscal_year=2024")).json()
    baseline_2025 = (await reporting.get("/api/v1/reports/baseline?fiscal_year=2025")).json()
    departments_2025 = (await reporting.get("/api/v1/reports/departments?fiscal_year=2025")).json()

    d2024 = {d["key"]: d for d in baseline_2024["departments"]}
    assert (d2024["D01"]["staff"], d2024["D01"]["staff_done"], d2024["D01"]["staff_rate"]) == (2, 1, 0.5)
    assert (d2024["D01"]["managers"], d2024["D01"]["managers_done"]) == (1, 1)
    d2025 = {d["key"]: d for d in baseline_2025["departments"]}
    assert (d2025["D03"]["staff"], d2025["D03"]["staff_done"], d2025["D03"]["managers_done"]) == (1, 1, 0)
    assert (d2025["D01"]["staff"], d2025["D01"]["staff_done"]) == (1, 0)
    assert {b["key"]: b["staff_rate"] for b in baseline_2025["bureaus"]} == {"総務部": 0.0, "地域県民局": 1.0}
    by_code = {d["code"]: d for d in departments_2025["departments"]}
    assert (by_code["D03"]["self_slot"], by_code["D03"]["completions"]) == (1, 1)
    assert by_code["D01"]["completions"] == 0


async def test_completions_before_the_roster_and_the_session_still_count_when_they_arrive(settings, reporting) -> None:
    await feed(settings, reporting, [
        session_completed("C1", "B1", "S1", 2024), waived("W1", "B1", "S2", 2024),
        roster(2024, ("S1", "D01", False), ("S2", "D01", False), ("S3", "D01", False)),
        session("B1", 2024, "all_staff", method="classroom"),
        roster(2024, removed=["S3"]),
    ])

    baseline = (await reporting.get("/api/v1/reports/baseline?fiscal_year=2024")).json()
    sessions = (await reporting.get("/api/v1/reports/sessions?fiscal_year=2024")).json()

    assert (baseline["overall"]["staff"], baseline["overall"]["staff_done"]) == (2, 2)
    b1 = sessions["sessions"][0]
    assert (b1["enrolled"], b1["completions"], b1["waived"]) == (2, 2, 1)
    classroom = next(m for m in sessions["by_method"] if m["method"] == "classroom")
    assert (classroom["sessions"], classroom["completions"]) == (1, 2)


async def test_a_trainee_report_shows_years_stages_and_sessions_required_against_done(settings, reporting) -> None:
    await feed(settings, reporting, [
        session("P1", 2024, "promoter", stage=1), session("P2", 2024, "promoter", "hands_on", stage=1),
        curriculum(2024, 1, ["P1"]), curriculum(2024, 1, ["P1", "P2"], revision=2),
        nominated("N1", "S1", "D01", 2024, "recommended"), advanced("S1", 2024, 0, 1),
        session_completed("C1", "P1", "S1", 2024), waived("W1", "P2", "S1", 2024),
        completed_stage("S1", 2024, 1),
        nominated("N2", "S1", "D01", 2025, "self"), advanced("S1", 2025, 1, 2),
    ])

    report = (await reporting.get("/api/v1/reports/trainees/S1")).json()
    missing = await reporting.get("/api/v1/reports/trainees/NOBODY")

    first, second = report["years"]
    assert (first["stage"], first["status"], first["new_promoter"]) == (1, "completed", True)
    assert (first["required_count"], first["done_count"], first["sessions_waived"]) == (2, 2, ["P2"])
    assert (second["stage"], second["status"], second["label_ja"]) == (2, "in_training", "令和7年度")
    assert missing.status_code == 404
    assert missing.json()["code"] == "UNKNOWN_TRAINEE"


async def test_pipeline_reports_streams_late_completions_and_unmatched_statements(settings, reporting) -> None:
    closing = datetime(2025, 4, 30, tzinfo=UTC)
    await feed(settings, reporting, [
        session_completed("C1", "B1", "S1", 2024, recorded_at=datetime(2025, 5, 10, tzinfo=UTC)),
        closed(2024, closing),
        session_completed("C2", "B1", "S2", 2024, recorded_at=datetime(2025, 3, 1, tzinfo=UTC)),
        session_completed("C3", "B1", "S3", 2024, recorded_at=datetime(2025, 6, 1, tzinfo=UTC)),
        unmatched("U1"),
    ])

    pipeline = (await reporting.get("/api/v1/reports/pipeline")).json()

    assert pipeline["late_completions"]["count"] == 2
    assert {r["record_id"] for r in pipeline["late_completions"]["recent"]} == {"C1", "C3"}
    assert pipeline["unmatched_statements"]["count"] == 1
    streams = {s["routing_key"]: s["events"] for s in pipeline["streams"]}
    assert streams["training.SessionCompleted.v1"] == 3
    own_dlq = next(q for q in pipeline["dead_letter_queues"] if q["queue"].endswith("reporting.events.dlq"))
    assert own_dlq["messages"] == 0


async def test_pipeline_shows_the_depth_of_another_services_dead_letter_queue(settings, reporting) -> None:
    facts_dlq = f"{settings.queue_prefix}progression.facts.dlq"
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(facts_dlq, durable=True, arguments={"x-queue-type": "quorum"})
        for body in (b"not a CloudEvent", b"{}"):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=facts_dlq)

    pipeline = (await reporting.get("/api/v1/reports/pipeline")).json()

    depths = {q["queue"].removeprefix(settings.queue_prefix): (q["messages"], q["status"])
              for q in pipeline["dead_letter_queues"]}
    assert depths == {
        "nomination.events.dlq": (None, "not_declared"),
        "training.rosters.dlq": (None, "not_declared"),
        "progression.facts.dlq": (2, "ok"),
        "reporting.events.dlq": (0, "ok"),
    }


async def test_a_streams_count_adds_up_what_every_consumer_counted(settings, reporting) -> None:
    await feed(settings, reporting, [unmatched("U1")])
    pool = await create_pool(settings.database_url, "reporting", min_size=2, max_size=2)
    try:
        async with pool.acquire() as first, pool.acquire() as second:
            for conn, unmatched_id in ((first, "U2"), (second, "U3")):
                extra = unmatched(unmatched_id)
                async with conn.transaction():
                    await handlers.handle(conn, extra, extra.payload())
    finally:
        await pool.close()

    pipeline = (await reporting.get("/api/v1/reports/pipeline")).json()

    streams = [s for s in pipeline["streams"] if s["routing_key"] == "training.CompletionUnmatched.v1"]
    assert [s["events"] for s in streams] == [3]
    assert (pipeline["events_total"], pipeline["unmatched_statements"]["count"]) == (3, 3)


async def test_csv_downloads_open_in_excel_and_neutralise_formulas(settings, reporting) -> None:
    await feed(settings, reporting, [
        departments(2024, ("=cmd|' /C calc'!A0", "悪意ある所属", "総務部")),
    ])

    plan_csv = await reporting.get("/api/v1/reports/plan.csv")
    departments_csv = await reporting.get("/api/v1/reports/departments.csv?fiscal_year=2024")

    assert plan_csv.headers["content-type"].startswith("text/csv")
    assert plan_csv.content.startswith(b"\xef\xbb\xbf")
    assert "業務効率化" in plan_csv.content.decode("utf-8-sig")
    assert "'=cmd" in departments_csv.content.decode("utf-8-sig")
    for path in ("baseline.csv?fiscal_year=2024", "sessions.csv?fiscal_year=2024", "pipeline.csv"):
        response = await reporting.get(f"/api/v1/reports/{path}")
        assert response.status_code == 200
        assert response.content.startswith(b"\xef\xbb\xbf")
