"""HTTP: roster imports, nominations and withdrawals, and the lists the offices read (CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field

from dx_shared.access import CallerDep, require, requires_scope
from dx_shared.bulk import collector_paused, off_loop
from dx_shared.calendar import fiscal_year_label_ja, fiscal_year_of, parse_fiscal_year
from dx_shared.clock import ClockDep
from dx_shared.plausibility import checked_fiscal_year
from dx_shared.problems import ProblemError
from dx_shared.roles import OFFICES, Role, Scope
from dx_shared.service import PoolDep, SettingsDep
from dx_shared.settings import Settings
from dx_shared.uploads import read_uploaded_file
from nomination import domain, use_cases
from nomination.csv_import import RowProblem, normalise_code
from nomination.domain import NominationRefused, NominationRequest, NominationStatus, Slot
from nomination.repository import NominationFilter, NominationView, PostgresRepository

router = APIRouter(prefix="/api/v1", tags=["nomination"])

FiscalYear = Annotated[int, BeforeValidator(parse_fiscal_year)]
Code = Annotated[
    str,
    BeforeValidator(lambda value: normalise_code(value) if isinstance(value, str) else value),
    Field(max_length=64),
]

REFUSAL_STATUS: dict[str, int] = {
    domain.QuotaExceeded.code: 409,
    domain.NotNew.code: 409,
    domain.AlreadyNominated.code: 409,
    domain.FiscalYearClosed.code: 409,
    domain.FiscalYearTooFarAhead.code: 422,
    domain.AlreadyWithdrawn.code: 409,
    domain.NominationNotFound.code: 404,
    domain.RoleNotPermitted.code: 403,
    domain.UnknownStaff.code: 422,
    domain.UnknownDepartment.code: 422,
    domain.DepartmentInactive.code: 422,
    domain.NotOwnDepartment.code: 422,
}

CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The CSV file as it is (UTF-8, UTF-8 with BOM or Shift_JIS; Japanese or English headers), "
        "either as the raw body or as the multipart field `file`.",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


# ---- wire shapes ------------------------------------------------------------------------------


class BadRow(BaseModel):
    line: int | None = Field(description="line in the file (1 = header); null when it concerns the whole file")
    code: str
    message_ja: str
    message_en: str


class ChangedRowOut(BaseModel):
    key: str = Field(description="department code or staff id")
    fields: list[str]


class ImportSummary(BaseModel):
    added: int
    changed: int
    unchanged: int
    removed: int


class ImportOut(BaseModel):
    kind: Literal["departments", "staff"]
    fiscal_year: int
    dry_run: bool
    applied: bool = Field(description="true when something was written and an event emitted")
    encoding: str
    rows: int
    summary: ImportSummary
    added: list[str]
    changed: list[ChangedRowOut]
    removed: list[str]
    total: int = Field(description="size of the fiscal year's list after the import (or as it would be)")
    ignored_columns: list[str]
    event_id: str | None


class NominationIn(BaseModel):
    staff_id: Code
    fiscal_year: FiscalYear
    slot: Slot
    department_code: Code | None = Field(
        None, description="the nominating department; it must be the nominee's own (defaults to it)"
    )


class WithdrawalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class NominationOut(BaseModel):
    nomination_id: str
    staff_id: str
    staff_name: str | None
    department_code: str
    department_name: str | None
    fiscal_year: int
    slot: Slot
    status: NominationStatus
    nominated_at: datetime
    withdrawn_at: datetime | None
    withdrawal_reason: str | None


class NominationPage(BaseModel):
    items: list[NominationOut]
    page: int
    page_size: int
    total: int


class DepartmentOut(BaseModel):
    code: str
    name: str
    bureau: str
    active: bool


class StaffOut(BaseModel):
    staff_id: str
    name: str
    is_manager: bool


class RecommendedSlotOut(BaseModel):
    used: bool
    nomination: NominationOut | None


class DepartmentNominationsOut(BaseModel):
    fiscal_year: int
    department: DepartmentOut
    recommended_slot: RecommendedSlotOut
    self_slot: list[NominationOut]
    withdrawn: list[NominationOut]


class SheetRowOut(BaseModel):
    line: int
    staff_id: str
    slot: Slot | None
    department_code: str | None
    outcome: Literal["accepted", "refused"]
    nomination_id: str | None = None
    code: str | None = None
    message_ja: str | None = None
    message_en: str | None = None


class SheetSummary(BaseModel):
    accepted: int
    refused: int


class SheetOut(BaseModel):
    fiscal_year: int
    dry_run: bool
    encoding: str
    summary: SheetSummary
    results: list[SheetRowOut]


# ---- roster imports ---------------------------------------------------------------------------


@router.post(
    "/departments/import", dependencies=[requires_scope(Scope.ROSTER_IMPORT)],
    response_model=ImportOut,
    summary="所属一覧の取込み — import a fiscal year's department list (CSV)",
    openapi_extra=CSV_BODY,
)
async def import_departments(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    caller: CallerDep,
    clock: ClockDep,
    fiscal_year: FiscalYear,
    dry_run: bool = False,
) -> Response:
    require(caller, OFFICES, "import rosters", "名簿の取込み")
    checked_fiscal_year(fiscal_year, settings, clock())
    raw = await _uploaded_csv(request, settings)
    with collector_paused():  # a large file's rows stay alive until the answer is built (dx_shared.bulk)
        return await _import_response(await use_cases.import_departments(pool, fiscal_year, raw, dry_run=dry_run))


@router.post(
    "/staff/import", dependencies=[requires_scope(Scope.ROSTER_IMPORT)],
    response_model=ImportOut,
    summary="職員名簿の取込み — import a fiscal year's staff roster (CSV)",
    openapi_extra=CSV_BODY,
)
async def import_staff(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    caller: CallerDep,
    clock: ClockDep,
    fiscal_year: FiscalYear,
    dry_run: bool = False,
) -> Response:
    require(caller, OFFICES, "import rosters", "名簿の取込み")
    checked_fiscal_year(fiscal_year, settings, clock())
    raw = await _uploaded_csv(request, settings)
    with collector_paused():
        return await _import_response(await use_cases.import_staff(pool, fiscal_year, raw, dry_run=dry_run))


async def _uploaded_csv(request: Request, settings: Settings) -> bytes:
    return await read_uploaded_file(request, settings.max_upload_bytes)


def _bad_rows(problems: tuple[RowProblem, ...]) -> list[dict[str, Any]]:
    return [BadRow(**problem.__dict__).model_dump() for problem in problems]


async def _import_response(report: use_cases.ImportReport) -> Response:
    """The import's answer, built and serialised off the event loop: a large file's report is large."""
    body = await off_loop(lambda: _import_out(report).model_dump_json())
    return Response(body, media_type="application/json")


def _import_out(report: use_cases.ImportReport) -> ImportOut:
    summary = ImportSummary(
        added=len(report.added), changed=len(report.changed), unchanged=report.unchanged, removed=len(report.removed)
    )
    if report.rejected:
        raise ProblemError(
            status=422,
            code="IMPORT_REJECTED",
            title_en="The file has errors; nothing was imported",
            title_ja="ファイルに誤りがあるため、取り込みませんでした",
            detail=f"{len(report.bad_rows)} problem(s); see bad_rows.",
            kind=report.list_name,
            fiscal_year=report.fiscal_year,
            dry_run=report.dry_run,
            encoding=report.encoding,
            rows=report.rows,
            bad_rows=_bad_rows(report.bad_rows),
        )
    return ImportOut(
        kind=report.list_name,
        fiscal_year=report.fiscal_year,
        dry_run=report.dry_run,
        applied=report.applied,
        encoding=report.encoding,
        rows=report.rows,
        summary=summary,
        added=list(report.added),
        changed=[ChangedRowOut(key=key, fields=list(fields)) for key, fields in report.changed],
        removed=list(report.removed),
        total=report.total,
        ignored_columns=list(report.ignored_columns),
        event_id=report.event_id,
    )


# ---- nominations ------------------------------------------------------------------------------


@router.post(
    "/nominations", dependencies=[requires_scope(Scope.NOMINATIONS_WRITE)],
    status_code=201,
    response_model=NominationOut,
    summary="推薦・自薦 — nominate a staff member for a fiscal year (recommended or self slot)",
)
async def create_nomination(
    body: NominationIn,
    pool: PoolDep,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> NominationOut:
    _nominable_year(body.fiscal_year, settings, clock())
    request = domain.as_requested_by(
        caller,
        NominationRequest(
            staff_id=body.staff_id, fiscal_year=body.fiscal_year, slot=body.slot, department_code=body.department_code
        ),
    )
    try:
        domain.check_may_nominate(caller, request)
        nomination = await use_cases.nominate(pool, request)
    except NominationRefused as refusal:
        raise refusal_problem(refusal) from refusal
    response.headers["Location"] = f"/api/v1/nominations/{nomination.nomination_id}"
    return await _nomination_out(pool, nomination.nomination_id)


@router.post(
    "/nominations/{nomination_id}/withdraw", dependencies=[requires_scope(Scope.NOMINATIONS_WRITE)],
    response_model=NominationOut,
    summary="取下げ — withdraw a nomination (frees the slot)",
)
async def withdraw_nomination(
    nomination_id: str, body: WithdrawalIn, pool: PoolDep, caller: CallerDep
) -> NominationOut:
    try:
        withdrawn = await use_cases.withdraw(pool, _nomination_id(nomination_id), body.reason, caller)
    except NominationRefused as refusal:
        raise refusal_problem(refusal) from refusal
    return await _nomination_out(pool, withdrawn.nomination_id)


@router.post(
    "/nominations/import", dependencies=[requires_scope(Scope.NOMINATIONS_WRITE)],
    response_model=SheetOut,
    summary="推薦・自薦一覧の取込み — nominate from a CSV sheet, each row judged on its own",
    openapi_extra=CSV_BODY,
)
async def import_nominations(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    caller: CallerDep,
    clock: ClockDep,
    fiscal_year: FiscalYear,
    dry_run: bool = False,
) -> SheetOut:
    require(caller, OFFICES, "import a nomination sheet", "推薦・自薦一覧の取込み")
    _nominable_year(fiscal_year, settings, clock())
    raw = await _uploaded_csv(request, settings)
    report = await use_cases.import_nomination_sheet(pool, fiscal_year, raw, dry_run=dry_run)
    if report.file_problems:
        raise ProblemError(
            status=422,
            code="IMPORT_REJECTED",
            title_en="The file cannot be read; nothing was imported",
            title_ja="ファイルを読み取れないため、取り込みませんでした",
            kind="nominations",
            fiscal_year=fiscal_year,
            dry_run=dry_run,
            bad_rows=_bad_rows(report.file_problems),
        )
    results = [_sheet_row_out(result) for result in report.results]
    accepted = sum(1 for result in results if result.outcome == "accepted")
    return SheetOut(
        fiscal_year=fiscal_year,
        dry_run=dry_run,
        encoding=report.encoding,
        summary=SheetSummary(accepted=accepted, refused=len(results) - accepted),
        results=results,
    )


def _sheet_row_out(result: use_cases.SheetRowResult) -> SheetRowOut:
    return SheetRowOut(
        line=result.line,
        staff_id=result.staff_id,
        slot=Slot(result.slot) if result.slot else None,
        department_code=result.department_code,
        outcome="accepted" if result.nomination else "refused",
        nomination_id=result.nomination.nomination_id if result.nomination else None,
        code=result.refusal_code,
        message_ja=result.message_ja,
        message_en=result.message_en,
    )


@router.get("/nominations", dependencies=[requires_scope(Scope.NOMINATIONS_READ)], response_model=NominationPage, summary="推薦・自薦の一覧 — list nominations")
async def list_nominations(
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
    fiscal_year: FiscalYear | None = None,
    department_code: Code | None = None,
    slot: Slot | None = None,
    status: NominationStatus | None = None,
    staff_id: Code | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NominationPage:
    if fiscal_year is not None:
        checked_fiscal_year(fiscal_year, settings, clock())
    # Department heads see their own department's people only; trainees their own nominations (§5).
    if caller.role is Role.DEPARTMENT:
        department_code = caller.department_code
    elif caller.role is Role.TRAINEE:
        staff_id = caller.staff_id
    where = NominationFilter(
        fiscal_year=fiscal_year, department_code=department_code, slot=slot, status=status, staff_id=staff_id
    )
    async with pool.acquire() as conn:
        views, total = await PostgresRepository(conn).find_nominations(
            where, limit=page_size, offset=(page - 1) * page_size
        )
    return NominationPage(items=[_out(view) for view in views], page=page, page_size=page_size, total=total)


@router.get("/nominations/{nomination_id}", dependencies=[requires_scope(Scope.NOMINATIONS_READ)], response_model=NominationOut, summary="one nomination")
async def get_nomination(nomination_id: str, pool: PoolDep, caller: CallerDep) -> NominationOut:
    found = await _nomination_out(pool, _nomination_id(nomination_id))
    if not caller.may_see_person(found.staff_id, found.department_code):
        raise refusal_problem(domain.nomination_not_found(nomination_id))
    return found


@router.get(
    "/departments", dependencies=[requires_scope(Scope.NOMINATIONS_READ)],
    response_model=list[DepartmentOut],
    summary="所属一覧 — a fiscal year's departments, by bureau and code",
)
async def list_departments(
    pool: PoolDep, settings: SettingsDep, clock: ClockDep, fiscal_year: FiscalYear | None = None
) -> list[DepartmentOut]:
    now = clock()
    year = checked_fiscal_year(fiscal_year, settings, now) if fiscal_year is not None else fiscal_year_of(now)
    async with pool.acquire() as conn:
        departments = await PostgresRepository(conn).departments_of(year)
    ordered = sorted(departments.values(), key=lambda department: (department.bureau, department.code))
    return [_department_out(department) for department in ordered]


@router.get(
    "/departments/{code}/nominations", dependencies=[requires_scope(Scope.NOMINATIONS_READ)],
    response_model=DepartmentNominationsOut,
    summary="所属の推薦状況 — a department's recommended slot and self-slot applicants in a fiscal year",
)
async def department_nominations(
    code: str,
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
    fiscal_year: FiscalYear | None = None,
) -> DepartmentNominationsOut:
    now = clock()
    year = checked_fiscal_year(fiscal_year, settings, now) if fiscal_year is not None else fiscal_year_of(now)
    department_code = normalise_code(code)
    if not caller.may_see_department(department_code):
        require(caller, frozenset(), "see another department's nominations", "他所属の推薦状況の閲覧")
    async with pool.acquire() as conn:
        repo = PostgresRepository(conn)
        department = await repo.department(year, department_code)
        if department is None:
            raise refusal_problem(
                domain.UnknownDepartment(
                    f"所属コード {department_code} は{fiscal_year_label_ja(year)}の所属一覧にありません。",
                    f"Department {department_code} is not in the FY{year} department list.",
                ),
                status=404,
            )
        views, _ = await repo.find_nominations(NominationFilter(fiscal_year=year, department_code=department_code))
    active = [view for view in views if view.nomination.is_active]
    holder = next((view for view in active if view.nomination.slot is Slot.RECOMMENDED), None)
    return DepartmentNominationsOut(
        fiscal_year=year,
        department=_department_out(department),
        recommended_slot=RecommendedSlotOut(used=holder is not None, nomination=_out(holder) if holder else None),
        self_slot=[_out(view) for view in active if view.nomination.slot is Slot.SELF],
        withdrawn=[_out(view) for view in views if not view.nomination.is_active],
    )


def _nominable_year(fiscal_year: int, settings: Settings, now: datetime) -> None:
    """At most one year ahead (FISCAL_YEAR_TOO_FAR_AHEAD), not before the first year (FISCAL_YEAR_OUT_OF_RANGE)."""
    try:
        domain.check_fiscal_year_not_too_far_ahead(fiscal_year, now)
    except NominationRefused as refusal:
        raise refusal_problem(refusal) from refusal
    checked_fiscal_year(fiscal_year, settings, now)


@router.get(
    "/departments/{code}/staff", dependencies=[requires_scope(Scope.NOMINATIONS_READ)],
    response_model=list[StaffOut],
    summary="所属の職員名簿 — a department's people on a fiscal year's roster (offices, and its own head)",
)
async def department_staff(
    code: str, pool: PoolDep, caller: CallerDep, settings: SettingsDep, clock: ClockDep,
    fiscal_year: FiscalYear | None = None,
) -> list[StaffOut]:
    now = clock()
    year = checked_fiscal_year(fiscal_year, settings, now) if fiscal_year is not None else fiscal_year_of(now)
    department_code = normalise_code(code)
    if not caller.may_see_department(department_code):
        require(caller, frozenset(), "see another department's roster", "他所属の職員名簿の閲覧")
    async with pool.acquire() as conn:
        staff = await PostgresRepository(conn).staff_of_department(year, department_code)
    return [StaffOut(staff_id=person.staff_id, name=person.name, is_manager=person.is_manager) for person in staff]


class StaffFoundOut(StaffOut):
    department_code: str


STAFF_SEARCH_LIMIT = 50


@router.get(
    "/staff", dependencies=[requires_scope(Scope.NOMINATIONS_READ)],
    response_model=list[StaffFoundOut],
    summary="職員の検索 — find people on a fiscal year's roster by staff id or name (the offices only)",
)
async def search_staff(
    pool: PoolDep, caller: CallerDep, settings: SettingsDep, clock: ClockDep,
    q: str = Query(..., min_length=1, max_length=40, description="a staff id (or its start) or part of a name"),
    fiscal_year: FiscalYear | None = None,
) -> list[StaffFoundOut]:
    """At most 50 people, by staff id. What was searched for is never logged (it may be a name)."""
    require(caller, OFFICES, "search the roster", "職員の検索")
    now = clock()
    year = checked_fiscal_year(fiscal_year, settings, now) if fiscal_year is not None else fiscal_year_of(now)
    text = q.strip()
    if not text:
        return []
    async with pool.acquire() as conn:
        found = await PostgresRepository(conn).search_staff(year, text, STAFF_SEARCH_LIMIT)
    return [StaffFoundOut(staff_id=p.staff_id, name=p.name, is_manager=p.is_manager,
                          department_code=p.department_code) for p in found]


class ContactOut(BaseModel):
    key: str = Field(description="department code or staff id")
    email: str


class ContactsOut(BaseModel):
    fiscal_year: int
    departments: list[ContactOut] = Field(description="departments whose list row has a contact address")
    staff: list[ContactOut] = Field(description="staff whose roster row has an address")


@router.get(
    "/contacts", dependencies=[requires_scope(Scope.CONTACTS_READ)],
    response_model=ContactsOut,
    summary="連絡先 — the e-mail addresses of a fiscal year's departments and staff (offices only, for reminders)",
)
async def contacts(
    pool: PoolDep, caller: CallerDep, settings: SettingsDep, clock: ClockDep, fiscal_year: FiscalYear | None = None
) -> ContactsOut:
    require(caller, OFFICES, "read contact addresses", "連絡先の閲覧")
    now = clock()
    year = checked_fiscal_year(fiscal_year, settings, now) if fiscal_year is not None else fiscal_year_of(now)
    async with pool.acquire() as conn:
        repo = PostgresRepository(conn)
        departments = await repo.departments_of(year)
        roster = await repo.roster_of(year)
    return ContactsOut(
        fiscal_year=year,
        departments=[ContactOut(key=code, email=d.email) for code, d in sorted(departments.items()) if d.email],
        staff=[ContactOut(key=staff_id, email=s.email) for staff_id, s in sorted(roster.items()) if s.email],
    )


def _department_out(department: domain.Department) -> DepartmentOut:
    return DepartmentOut(code=department.code, name=department.name, bureau=department.bureau,
                         active=department.active)


def refusal_problem(refusal: NominationRefused, status: int | None = None) -> ProblemError:
    return ProblemError(
        status=status or REFUSAL_STATUS.get(refusal.code, 409),
        code=refusal.code,
        title_en=refusal.title_en,
        title_ja=refusal.title_ja,
        detail=refusal.detail_en,
        detail_ja=refusal.detail_ja,
        rule=refusal.rule or None,
    )


def _nomination_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise refusal_problem(domain.nomination_not_found(text)) from exc


async def _nomination_out(pool: Any, nomination_id: str) -> NominationOut:
    async with pool.acquire() as conn:
        view = await PostgresRepository(conn).nomination_view(nomination_id)
    if view is None:
        raise refusal_problem(domain.nomination_not_found(nomination_id))
    return _out(view)


def _out(view: NominationView) -> NominationOut:
    nomination = view.nomination
    return NominationOut(
        nomination_id=nomination.nomination_id,
        staff_id=nomination.staff_id,
        staff_name=view.staff_name,
        department_code=nomination.department_code,
        department_name=view.department_name,
        fiscal_year=nomination.fiscal_year,
        slot=nomination.slot,
        status=nomination.status,
        nominated_at=nomination.nominated_at,
        withdrawn_at=nomination.withdrawn_at,
        withdrawal_reason=nomination.withdrawal_reason,
    )
