"""HTTP: the reports as JSON under /api/v1/reports and the same as CSV (`.csv`); people read them in the portal."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response

from dx_shared.access import CallerDep, refused, requires_scope
from dx_shared.calendar import fiscal_year_of, latest_accepted_fiscal_year, parse_fiscal_year
from dx_shared.clock import ClockDep, system_clock
from dx_shared.plausibility import FiscalYearQueryDep, fiscal_year_out_of_range, invalid_fiscal_year
from dx_shared.problems import ProblemError
from dx_shared.roles import Caller, Role, Scope
from dx_shared.service import PoolDep, SettingsDep
from reporting import csv_views, reports, visibility
from reporting.dead_letters import dead_letter_depths
from reporting.repository import ReportQueries

router = APIRouter(tags=["reports"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
PeriodQuery = Query(None, max_length=16, description="2024, FY2024, R6 or 令和6年度")


def _fiscal_year(checked: int | None, now: datetime | None = None) -> int:
    """The checked `fiscal_year` query parameter, or the current fiscal year when it was not given."""
    return checked if checked is not None else int(fiscal_year_of(now or system_clock()))


def _period_year(text: str | None, default: int, accepted: range) -> int:
    if text is None or text == "":
        return default
    try:
        year = int(parse_fiscal_year(text))
    except ValueError as exc:
        raise invalid_fiscal_year(text) from exc
    if year not in accepted:
        raise fiscal_year_out_of_range(year, accepted)
    return year


def _csv(body: bytes, name: str) -> Response:
    return Response(body, media_type=CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


async def _plan(pool: Any, settings: Any, now: datetime, first: str | None, last: str | None) -> dict[str, Any]:
    targets = reports.plan_targets(settings)
    # The plan table may look ahead to the end of the plan period (its targets), never further.
    accepted = range(settings.first_fiscal_year, max(latest_accepted_fiscal_year(now), targets.last_year) + 1)
    first_year = _period_year(first, targets.first_year, accepted)
    last_year = _period_year(last, targets.last_year, accepted)
    if last_year < first_year or last_year - first_year > 50:
        raise ProblemError(
            status=422, code="INVALID_PERIOD", title_en="The period is empty or too long",
            title_ja="期間の指定が正しくありません", detail=f"from={first_year} to={last_year}",
        )
    return await reports.plan_report(ReportQueries(pool), targets, first_year, last_year)


@router.get("/api/v1/reports/plan", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="育成計画: plan vs actual per stage and fiscal year, with 累計")
async def plan(pool: PoolDep, settings: SettingsDep, clock: ClockDep,
               from_: str | None = Query(None, alias="from", max_length=16),
               to: str | None = PeriodQuery) -> dict[str, Any]:
    return await _plan(pool, settings, clock(), from_, to)


@router.get("/api/v1/reports/plan.csv", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="育成計画 as CSV (UTF-8 with BOM)", response_class=Response)
async def plan_csv(pool: PoolDep, settings: SettingsDep, clock: ClockDep,
                   from_: str | None = Query(None, alias="from", max_length=16),
                   to: str | None = PeriodQuery) -> Response:
    return _csv(csv_views.plan_csv(await _plan(pool, settings, clock(), from_, to)), "plan")


@router.get("/api/v1/reports/departments", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Per department: recommended slot, volunteers, completions")
async def departments(pool: PoolDep, caller: CallerDep, fiscal_year: FiscalYearQueryDep) -> dict[str, Any]:
    return _departments_seen_by(caller, await reports.department_report(ReportQueries(pool), _fiscal_year(fiscal_year)))


@router.get("/api/v1/reports/departments.csv", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Department report as CSV", response_class=Response)
async def departments_csv(pool: PoolDep, caller: CallerDep, fiscal_year: FiscalYearQueryDep) -> Response:
    year = _fiscal_year(fiscal_year)
    report = _departments_seen_by(caller, await reports.department_report(ReportQueries(pool), year))
    return _csv(csv_views.departments_csv(report), f"departments-FY{year}")


def _departments_seen_by(caller: Caller, report: dict[str, Any]) -> dict[str, Any]:
    seen = visibility.departments_seen_by(caller, report)
    if seen is None:
        raise refused(caller, "see the department report", "所属別報告の閲覧")
    return seen


@router.get("/api/v1/reports/baseline", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Baseline completion rates by department, bureau, managers")
async def baseline(pool: PoolDep, caller: CallerDep, fiscal_year: FiscalYearQueryDep) -> dict[str, Any]:
    return visibility.baseline_seen_by(caller, await reports.baseline_report(ReportQueries(pool), _fiscal_year(fiscal_year)))


@router.get("/api/v1/reports/baseline.csv", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Baseline report as CSV", response_class=Response)
async def baseline_csv(pool: PoolDep, caller: CallerDep, fiscal_year: FiscalYearQueryDep) -> Response:
    year = _fiscal_year(fiscal_year)
    report = visibility.baseline_seen_by(caller, await reports.baseline_report(ReportQueries(pool), year))
    return _csv(csv_views.baseline_csv(report), f"baseline-FY{year}")


@router.get("/api/v1/reports/departments/{code}/trainees", dependencies=[requires_scope(Scope.PROGRESS_READ)],
            summary="A department's DX promoters of a fiscal year: stage, status, required sessions done")
async def department_trainees(
    pool: PoolDep, caller: CallerDep, code: str, fiscal_year: FiscalYearQueryDep,
    stage: int | None = Query(None, ge=1, le=5), slot: Literal["recommended", "self"] | None = None,
) -> dict[str, Any]:
    """The offices see every department; a department head only their own (§5); a trainee none."""
    if not caller.may_see_department(code):
        raise refused(caller, "see this department's trainees", "この所属の受講者一覧の閲覧")
    report = await reports.department_trainees_report(ReportQueries(pool), _fiscal_year(fiscal_year), code)
    report["trainees"] = [
        row for row in report["trainees"]
        if (stage is None or row["stage"] == stage) and (slot is None or row["slot"] == slot)
    ]
    return report


async def _trainee(pool: Any, staff_id: str, caller: Caller) -> dict[str, Any]:
    if caller.role is Role.TRAINEE and staff_id != caller.staff_id:
        # Refused before the lookup, so a trainee cannot learn whether someone else has a record.
        raise refused(caller, "see this trainee's progress", "この研修受講者の進捗の閲覧")
    report = await reports.trainee_report(ReportQueries(pool), staff_id)
    if report is None:
        raise ProblemError(
            status=404, code="UNKNOWN_TRAINEE", title_en="No DX promoter record for this staff id",
            title_ja="この職員のDX推進員記録はありません", staff_id=staff_id,
        )
    # Department heads see the people of their department (nominated by it or on its roster); trainees
    # themselves (POLICY.md §5).
    departments = {year.get(key) for year in report["years"] for key in ("department_code", "roster_department_code")}
    if not any(caller.may_see_person(staff_id, department) for department in departments | {None}):
        raise refused(caller, "see this trainee's progress", "この研修受講者の進捗の閲覧")
    return report


@router.get("/api/v1/reports/trainees/{staff_id}.csv", dependencies=[requires_scope(Scope.PROGRESS_READ)],
            summary="One person's progress as CSV",
            response_class=Response)
async def trainee_csv(pool: PoolDep, staff_id: str, caller: CallerDep) -> Response:
    return _csv(csv_views.trainee_csv(await _trainee(pool, staff_id, caller)), f"trainee-{staff_id}")


@router.get("/api/v1/reports/trainees/{staff_id}", dependencies=[requires_scope(Scope.PROGRESS_READ)],
            summary="One person's years, stages, sessions and status")
async def trainee(pool: PoolDep, staff_id: str, caller: CallerDep) -> dict[str, Any]:
    return await _trainee(pool, staff_id, caller)


@router.get("/api/v1/reports/sessions", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Sessions of a fiscal year: enrolments and completions by method")
async def sessions(pool: PoolDep, fiscal_year: FiscalYearQueryDep) -> dict[str, Any]:
    return await reports.sessions_report(ReportQueries(pool), _fiscal_year(fiscal_year))


@router.get("/api/v1/reports/sessions.csv", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Sessions report as CSV", response_class=Response)
async def sessions_csv(pool: PoolDep, fiscal_year: FiscalYearQueryDep) -> Response:
    year = _fiscal_year(fiscal_year)
    return _csv(csv_views.sessions_csv(await reports.sessions_report(ReportQueries(pool), year)),
                f"sessions-FY{year}")


@router.get("/api/v1/reports/pipeline", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Pipeline health: streams, dead-letter queues, late, unmatched")
async def pipeline(pool: PoolDep, settings: SettingsDep, caller: CallerDep) -> dict[str, Any]:
    _require_pipeline(caller)
    return await reports.pipeline_report(ReportQueries(pool), await dead_letter_depths(settings))


@router.get("/api/v1/reports/pipeline.csv", dependencies=[requires_scope(Scope.REPORTS_READ)],
            summary="Pipeline health as CSV", response_class=Response)
async def pipeline_csv(pool: PoolDep, settings: SettingsDep, caller: CallerDep) -> Response:
    _require_pipeline(caller)
    report = await reports.pipeline_report(ReportQueries(pool), await dead_letter_depths(settings))
    return _csv(csv_views.pipeline_csv(report), "pipeline")


def _require_pipeline(caller: Caller) -> None:
    if not visibility.sees_pipeline(caller):
        raise refused(caller, "see pipeline health", "データ連携状況の閲覧")


@router.get("/", summary="The dashboard moved to the portal: 303 to DX_PORTAL_URL", response_class=RedirectResponse,
            status_code=303, tags=["dashboard"], dependencies=[requires_scope(Scope.REPORTS_READ)])
async def dashboard(settings: SettingsDep) -> RedirectResponse:
    return RedirectResponse(f"{settings.portal_url.rstrip('/')}/", status_code=303)
