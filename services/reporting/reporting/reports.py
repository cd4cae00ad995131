"""The reports as plain JSON-ready documents: read the tallies, shape them with the domain, label them.

The HTTP API, the CSV downloads and the dashboard all render these same documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dx_shared.calendar import fiscal_year_code, fiscal_year_label_ja
from dx_shared.settings import Settings
from reporting.domain import (
    PLAN_FIGURES,
    STAGE_NAMES,
    STATUS_LABELS_JA,
    BaselineRate,
    PlanTargets,
    build_baseline_report,
    build_department_report,
    build_plan_table,
    trainee_department,
    trainee_year_status,
    year_withdrawn,
)
from reporting.repository import ReportQueries

Document = dict[str, Any]

METHOD_LABELS_JA = {"e_learning": "e-ラーニング", "classroom": "集合研修", "hands_on": "ハンズオン"}
AUDIENCE_LABELS_JA = {"promoter": "DX推進員", "all_staff": "全職員", "managers": "管理職"}


def plan_targets(settings: Settings) -> PlanTargets:
    return PlanTargets(
        first_year=settings.plan_first_year,
        last_year=settings.plan_last_year,
        new_per_year=settings.plan_new_per_year,
        new_total=settings.plan_new_total,
    )


def year_label(fiscal_year: int) -> Document:
    return {"fiscal_year": fiscal_year, "code": fiscal_year_code(fiscal_year),
            "label_ja": fiscal_year_label_ja(fiscal_year)}


async def plan_report(queries: ReportQueries, targets: PlanTargets, first_year: int, last_year: int) -> Document:
    table = build_plan_table(targets, await queries.stage_year_tallies(first_year, last_year), first_year, last_year)
    return {
        "from": first_year,
        "to": last_year,
        "fiscal_years": [year_label(year) for year in table.fiscal_years],
        "targets": {
            "plan_first_year": targets.first_year, "plan_last_year": targets.last_year,
            "new_per_year": targets.new_per_year, "new_total": targets.new_total,
        },
        "figures": {
            figure.key: {"label_ja": figure.label_ja, "label_en": figure.label_en,
                         "definition_ja": figure.definition_ja, "definition_en": figure.definition_en}
            for figure in PLAN_FIGURES
        },
        "stages": [
            {
                "stage": row.stage, "name_ja": row.name_ja, "name_en": row.name_en,
                "cells": [
                    {"fiscal_year": year, "plan": cell.plan, "entered": cell.entered, "completed": cell.completed,
                     "new": cell.new}
                    for year, cell in zip(table.fiscal_years, row.cells, strict=True)
                ],
                "cumulative": {"plan": row.cumulative.plan, "entered": row.cumulative.entered,
                               "completed": row.cumulative.completed, "new": row.cumulative.new},
            }
            for row in table.rows
        ],
        "new_promoters": {
            "per_year": [
                {"fiscal_year": entry.fiscal_year, "target": entry.target, "actual": entry.actual,
                 "share": entry.share}
                for entry in table.new_per_year
            ],
            "cumulative": {"target": table.new_cumulative.target, "actual": table.new_cumulative.actual,
                           "share": table.new_cumulative.share},
        },
    }


async def department_report(queries: ReportQueries, fiscal_year: int) -> Document:
    report = build_department_report(
        fiscal_year, await queries.departments(fiscal_year), await queries.department_counts(fiscal_year)
    )
    rows = [row.__dict__ for row in report.rows]
    return {
        **year_label(fiscal_year),
        "departments": rows,
        "missing_nomination": [
            {"code": row.code, "name": row.name, "bureau": row.bureau} for row in report.missing_nomination
        ],
        "totals": {
            "departments": len(rows),
            "active_departments": sum(1 for row in report.rows if row.active),
            "recommended_slot_used": sum(1 for row in report.rows if row.recommended_slot_used),
            "missing_nomination": len(report.missing_nomination),
            "self_slot": sum(row.self_slot for row in report.rows),
            "trainees": report.total_trainees,
            "completions": report.total_completions,
        },
    }


def _rate_document(rate: BaselineRate) -> Document:
    return {
        "key": rate.key, "label": rate.label,
        "staff": rate.staff, "staff_done": rate.staff_done, "staff_rate": rate.staff_rate,
        "managers": rate.managers, "managers_done": rate.managers_done, "managers_rate": rate.managers_rate,
    }


async def baseline_report(queries: ReportQueries, fiscal_year: int) -> Document:
    report = build_baseline_report(
        fiscal_year, await queries.departments(fiscal_year), await queries.baseline_counts(fiscal_year)
    )
    return {
        **year_label(fiscal_year),
        "overall": _rate_document(report.overall),
        "managers": {"managers": report.overall.managers, "managers_done": report.overall.managers_done,
                     "managers_rate": report.overall.managers_rate},
        "bureaus": [_rate_document(rate) for rate in report.bureaus],
        "departments": [_rate_document(rate) for rate in report.departments],
    }


async def trainee_report(queries: ReportQueries, staff_id: str) -> Document | None:
    years = await queries.trainee_years(staff_id)
    nominations = await queries.nominations_of_person(staff_id)
    if not years and not nominations:
        return None
    roster = {row["fiscal_year"]: row for row in await queries.roster_of_person(staff_id)}
    records = await queries.completion_records_of_person(staff_id)
    curricula = await queries.curricula([(y.fiscal_year, y.stage) for y in years if y.stage is not None])
    ever_required = await queries.curriculum_sessions_ever([y.fiscal_year for y in years])
    closed = await queries.closed_years()
    documents = []
    finished_before = False
    for year in years:
        required = curricula.get((year.fiscal_year, year.stage), []) if year.stage else []
        of_year = [r for r in records if r["fiscal_year"] == year.fiscal_year]
        met = {r["session_id"] for r in of_year}
        waived_only = {
            session for session in met
            if all(r["kind"] == "waiver" for r in of_year if r["session_id"] == session)
        }
        year_nominations = [n for n in nominations if n.fiscal_year == year.fiscal_year]
        withdrawn = year_withdrawn(
            year_nominations, closed.get(year.fiscal_year),
            [(r["session_id"], r["recorded_at"]) for r in of_year], ever_required.get(year.fiscal_year, set()),
        )
        status = trainee_year_status(year, withdrawn=withdrawn, finished_before=finished_before)
        finished_before = finished_before or status == "finished"
        live = year.live_decision
        documents.append({
            **year_label(year.fiscal_year),
            "stage": year.stage,
            "stage_name_ja": STAGE_NAMES[year.stage][0] if year.stage else None,
            "decision": live.kind if live else ("cancelled" if status == "cancelled" else None),
            "new_promoter": year.is_new,
            "status": status,
            "status_ja": STATUS_LABELS_JA[status],
            "finished": finished_before,
            "completed_stage": year.completed_stage,
            "completed_at": year.completed_at.isoformat() if year.completed_at else None,
            "department_code": trainee_department(year_nominations) or year.department_code,
            "roster_department_code": roster[year.fiscal_year]["department_code"]
            if year.fiscal_year in roster else None,
            "nominations": [
                {"nomination_id": n.nomination_id, "slot": n.slot, "department_code": n.department_code,
                 "active": n.is_active, "withdrawn": n.withdrawn}
                for n in year_nominations
            ],
            "sessions_required": required,
            "sessions_done": sorted(met & set(required)),
            "sessions_waived": sorted(waived_only & set(required)),
            "required_count": len(required),
            "done_count": len(met & set(required)),
        })
    return {"staff_id": staff_id, "years": documents}


async def department_trainees_report(queries: ReportQueries, fiscal_year: int, department_code: str) -> Document:
    """The department's DX promoters of a fiscal year, each with the same year document as their own report."""
    people = []
    for staff_id in await queries.people_of_department(fiscal_year, department_code):
        report = await trainee_report(queries, staff_id)
        year = next((y for y in (report or {}).get("years", []) if y["fiscal_year"] == fiscal_year), None)
        if year is None or year["department_code"] != department_code:
            continue
        active = [n for n in year["nominations"] if n["active"]]
        people.append({
            "staff_id": staff_id,
            **{key: year[key] for key in ("stage", "stage_name_ja", "status", "status_ja", "new_promoter",
                                          "sessions_required", "sessions_done", "sessions_waived",
                                          "required_count", "done_count")},
            "slot": active[0]["slot"] if active else None,
        })
    return {**year_label(fiscal_year), "department_code": department_code, "trainees": people}


async def sessions_report(queries: ReportQueries, fiscal_year: int) -> Document:
    sessions = await queries.sessions(fiscal_year)
    curricula = await queries.curricula_of_year(fiscal_year)
    entered = {t.stage: t.entered for t in await queries.stage_year_tallies(fiscal_year, fiscal_year)}
    baseline = await queries.baseline_counts(fiscal_year)
    staff_total = sum(value for (_, measure), value in baseline.items() if measure == "staff")
    managers_total = sum(value for (_, measure), value in baseline.items() if measure == "managers")
    rows = []
    for session in sessions:
        audience = session["audience"]
        if audience == "all_staff":
            enrolled = staff_total
        elif audience == "managers":
            enrolled = managers_total
        else:
            stages = [stage for stage, ids in curricula.items() if session["session_id"] in ids]
            enrolled = sum(entered.get(stage, 0) for stage in stages)
        rows.append({
            "session_id": session["session_id"], "title": session["title"], "method": session["method"],
            "method_ja": METHOD_LABELS_JA.get(session["method"], session["method"]),
            "audience": audience, "audience_ja": AUDIENCE_LABELS_JA.get(audience, audience),
            "stage": session["stage"],
            "starts_at": session["starts_at"].isoformat() if session["starts_at"] else None,
            "capacity": session["capacity"], "enrolled": enrolled,
            "completions": session["completions"], "waived": session["waived"],
        })
    by_method = []
    for method, label in METHOD_LABELS_JA.items():
        of_method = [row for row in rows if row["method"] == method]
        by_method.append({
            "method": method, "method_ja": label, "sessions": len(of_method),
            "enrolled": sum(row["enrolled"] for row in of_method),
            "completions": sum(row["completions"] for row in of_method),
        })
    return {**year_label(fiscal_year), "sessions": rows, "by_method": by_method}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def pipeline_report(queries: ReportQueries, dead_letter_queues: list[Document]) -> Document:
    late_total, late = await queries.late_completions()
    unmatched_total, unmatched = await queries.unmatched_statements()
    streams = await queries.streams()
    return {
        "streams": [
            {"routing_key": s["routing_key"], "events": s["events"],
             "last_event_time": _iso(s["last_event_time"]), "last_received_at": _iso(s["last_received_at"])}
            for s in streams
        ],
        "events_total": sum(s["events"] for s in streams),
        "dead_letter_queues": dead_letter_queues,
        "late_completions": {
            "count": late_total,
            "recent": [
                {"record_id": r["record_id"], "session_id": r["session_id"], "staff_id": r["staff_id"],
                 "fiscal_year": r["fiscal_year"], "recorded_at": _iso(r["recorded_at"]),
                 "closed_at": _iso(r["closed_at"])}
                for r in late
            ],
        },
        "unmatched_statements": {
            "count": unmatched_total,
            "recent": [
                {"unmatched_id": r["unmatched_id"], "reason": r["reason"], "session_ref": r["session_ref"],
                 "staff_id": r["staff_id"], "received_at": _iso(r["received_at"])}
                for r in unmatched
            ],
        },
    }
