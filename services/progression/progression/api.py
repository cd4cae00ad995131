"""HTTP: closing a fiscal year (P6), and a trainee's standing year by year, with the reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from dx_shared.access import CallerDep, refused, require, requires_scope
from dx_shared.calendar import fiscal_year_code, fiscal_year_label_ja
from dx_shared.clock import ClockDep
from dx_shared.logging import get_logger
from dx_shared.plausibility import accepted_fiscal_year
from dx_shared.problems import ProblemError
from dx_shared.roles import OFFICES, Role, Scope
from dx_shared.service import PoolDep, SettingsDep
from progression import handlers
from progression.closing import ClosingRefused, may_close
from progression.domain import (
    EmittedYear,
    PersonStanding,
    YearStanding,
    finished_by,
    pending_on,
    provisional_in,
)
from progression.explanation import explain_cancelled, explain_year, stage_en, stage_ja
from progression.repository import PostgresProgressionStore

router = APIRouter(prefix="/api/v1", tags=["progression"])
log = get_logger(__name__)


class CloseFiscalYearRequest(BaseModel):
    """Who closes the year is the access token's subject; the body says only whether it is an early close."""

    early_close: bool = Field(
        False, description="close before the year has ended (1 April after it, JST): the DX office only, with a reason"
    )
    reason: str | None = Field(None, max_length=2000, description="why the year is closed early; kept in the event")


class FiscalYearClosedResponse(BaseModel):
    fiscal_year: int
    fiscal_year_label: str
    closed_at: datetime
    event_id: str
    decisions_announced: int
    early_close: bool = False
    reason: str | None = None


class Words(BaseModel):
    ja: str
    en: str


class StageCompletionView(BaseModel):
    stage: int
    completed_at: datetime
    evidence: list[str]


class TraineeYearView(BaseModel):
    fiscal_year: int
    fiscal_year_label: str = Field(description="令和N年度")
    nomination_id: str
    stage: int | None = Field(description="null while the decision is pending")
    stage_name: Words | None
    decision: Literal["advanced", "repeated", "pending"]
    from_stage: int | None
    reason: str | None
    status: Literal["provisional", "final"]
    decided_by_fiscal_year: int | None = Field(description="the earlier enrolled year the decision rests on")
    awaiting_fiscal_year: int | None = Field(description="for a pending decision: the open year it waits for")
    completed: bool
    finished: bool = Field(description="修了: stage 5 completed in this or an earlier fiscal year")
    completion: StageCompletionView | None
    evidence: list[str] = Field(description="ids of the events that decided the stage")
    decision_event_id: str | None = Field(description="the StageAdvanced/StageRepeated event announcing it")
    rule_version: str
    explanation: Words


class CancelledYearView(BaseModel):
    fiscal_year: int
    fiscal_year_label: str
    evidence: list[str]
    explanation: Words


class LateFactView(BaseModel):
    event_id: str
    kind: Literal["completion", "withdrawal"]
    fiscal_year: int
    session_id: str | None
    recorded_at: datetime
    closed_at: datetime


class TraineeStandingView(BaseModel):
    staff_id: str
    current_stage: int | None
    finished: bool = Field(description="修了: stage 5 completed")
    rule_version: str
    years: list[TraineeYearView]
    cancelled_years: list[CancelledYearView]
    late: list[LateFactView] = Field(description="facts recorded after their fiscal year closed: kept, no effect")


@router.post(
    "/fiscal-years/{fiscal_year}/close",
    dependencies=[requires_scope(Scope.FY_CLOSE)],
    status_code=201,
    response_model=FiscalYearClosedResponse,
    summary="Close a fiscal year (年度締め): its decisions become final, people still waiting repeat",
    responses={
        409: {"description": "FISCAL_YEAR_ALREADY_CLOSED, or FISCAL_YEAR_NOT_ENDED (before 1 April after it, JST)"},
        422: {"description": "FISCAL_YEAR_OUT_OF_RANGE, or EARLY_CLOSE_REASON_REQUIRED"},
    },
)
async def close_fiscal_year(
    fiscal_year: str,
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
    body: CloseFiscalYearRequest | None = Body(None),
) -> FiscalYearClosedResponse:
    """Who closed it, for the record, is the access token's subject. A year can be closed from 1 April after it (JST). Before that only the DX office's explicit
    `early_close: true` with a `reason` closes it; the reason is kept in FiscalYearClosed and the log."""
    require(caller, frozenset({Role.DX_OFFICE}), "close a fiscal year", "年度締め")
    now = clock()
    year = accepted_fiscal_year(fiscal_year, settings, now)
    request = body or CloseFiscalYearRequest()
    actor = caller.subject
    try:
        permit = may_close(
            year,
            now,
            early_close=request.early_close,
            reason=request.reason,
            by_dx_office=caller.role is Role.DX_OFFICE,
        )
    except ClosingRefused as refusal:
        raise ProblemError(
            status=refusal.status,
            code=refusal.code,
            title_en=refusal.title_en,
            title_ja=refusal.title_ja,
            detail=refusal.detail,
            detail_ja=refusal.detail_ja,
            fiscal_year=year,
        ) from refusal
    async with pool.acquire() as conn, conn.transaction():
        store = PostgresProgressionStore(conn)
        closing, announced = await handlers.close_fiscal_year(
            store, conn, year, actor, early_close=permit.early, reason=permit.reason
        )
        if closing is None:
            earlier = await store.closing_of(year)
            raise ProblemError(
                status=409,
                code="FISCAL_YEAR_ALREADY_CLOSED",
                title_en="The fiscal year is already closed",
                title_ja="この年度はすでに締められています",
                detail=f"{fiscal_year_code(year)} ({fiscal_year_label_ja(year)}) was closed"
                + (f" at {earlier.closed_at.isoformat()}" if earlier else ""),
                fiscal_year=year,
            )
    if permit.early:
        log.warning("fiscal_year_closed_early", fiscal_year=year, reason=permit.reason, event_id=closing.event_id)
    return FiscalYearClosedResponse(
        fiscal_year=year,
        fiscal_year_label=fiscal_year_label_ja(year),
        closed_at=closing.closed_at,
        event_id=closing.event_id,
        decisions_announced=announced,
        early_close=permit.early,
        reason=permit.reason,
    )


class OpenDecisionView(BaseModel):
    staff_id: str
    fiscal_year: int
    fiscal_year_label: str
    decision: Literal["advanced", "repeated", "pending"]
    stage: int | None
    status: Literal["provisional", "final"]
    awaiting_fiscal_year: int | None = Field(description="for a pending decision: the open year it waits for")
    explanation: Words


class OpenDecisionsView(BaseModel):
    fiscal_year: int
    fiscal_year_label: str
    state: Literal["pending", "provisional"]
    count: int
    items: list[OpenDecisionView]


@router.get(
    "/decisions", dependencies=[requires_scope(Scope.PROGRESS_READ)],
    response_model=OpenDecisionsView,
    summary="Decisions not yet final for a fiscal year (offices): pending ones, or provisional ones",
)
async def open_decisions(
    pool: PoolDep, caller: CallerDep, settings: SettingsDep, clock: ClockDep,
    fiscal_year: str = Query(..., max_length=16, description="2024, FY2024, R6 or 令和6年度"),
    state: Literal["pending", "provisional"] = Query("pending"),
) -> OpenDecisionsView:
    """`pending`: trainee-years with no stage yet that FY N concerns — of FY N, or of a later year waiting
    for FY N's outcome (closing FY N decides those). `provisional`: FY N trainee-years with a stage that is
    not final yet. For the DX office's closing checklist; staff ids only, never names."""
    require(caller, OFFICES, "list open decisions", "未確定の判定の一覧")
    year = accepted_fiscal_year(fiscal_year, settings, clock())
    select = pending_on if state == "pending" else provisional_in
    items: list[OpenDecisionView] = []
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        store = PostgresProgressionStore(conn)
        people = sorted(set(await store.people_nominated_in(year)) | set(await store.people_nominated_in(year + 1)))
        for staff_id in people:
            for found in select(await handlers.standing_of(store, staff_id), year):
                items.append(OpenDecisionView(
                    staff_id=staff_id, fiscal_year=found.fiscal_year,
                    fiscal_year_label=fiscal_year_label_ja(found.fiscal_year), decision=found.kind.value,
                    stage=found.stage, status="final" if found.final else "provisional",
                    awaiting_fiscal_year=found.awaiting_fiscal_year,
                    explanation=Words(**vars(explain_year(found))),
                ))
    return OpenDecisionsView(fiscal_year=year, fiscal_year_label=fiscal_year_label_ja(year), state=state,
                             count=len(items), items=items)


@router.get(
    "/trainees/{staff_id}",
    dependencies=[requires_scope(Scope.PROGRESS_READ)],
    response_model=TraineeStandingView,
    summary="A trainee's stages year by year, each with its decision, evidence and explanation",
)
async def trainee_standing(staff_id: str, pool: PoolDep, caller: CallerDep) -> TraineeStandingView:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        store = PostgresProgressionStore(conn)
        # Department heads see the people their department nominated; trainees themselves (§5).
        if not caller.may_see_person(staff_id) and not (
            caller.role is Role.DEPARTMENT
            and caller.department_code is not None
            and await store.nominated_by_department(staff_id, caller.department_code)
        ):
            raise refused(caller, "see this trainee", "この研修受講者の閲覧")
        standing = await handlers.standing_of(store, staff_id)
        announced = await store.announced_for(staff_id)
    if not standing.known:
        raise ProblemError(
            status=404,
            code="UNKNOWN_TRAINEE",
            title_en="No nomination is known for this staff member",
            title_ja="この職員の推薦は登録されていません",
            detail=f"staff {staff_id} has never been nominated as a DX promoter",
            staff_id=staff_id,
        )
    return _standing_view(standing, announced)


def _standing_view(standing: PersonStanding, announced: dict[int, EmittedYear]) -> TraineeStandingView:
    current = standing.current
    return TraineeStandingView(
        staff_id=standing.staff_id,
        current_stage=current.stage if current else None,
        finished=finished_by(standing, None),
        rule_version=standing.rule_version,
        years=[
            _year_view(
                year, announced.get(year.fiscal_year), standing.rule_version, finished_by(standing, year.fiscal_year)
            )
            for year in standing.years
        ],
        cancelled_years=[
            CancelledYearView(
                fiscal_year=year.fiscal_year,
                fiscal_year_label=fiscal_year_label_ja(year.fiscal_year),
                evidence=list(year.evidence),
                explanation=Words(**vars(explain_cancelled(year))),
            )
            for year in standing.cancelled_years
        ],
        late=[
            LateFactView(
                event_id=fact.event_id,
                kind="completion" if fact.kind == "completion" else "withdrawal",
                fiscal_year=fact.fiscal_year,
                session_id=fact.session_id,
                recorded_at=fact.recorded_at,
                closed_at=fact.closed_at,
            )
            for fact in standing.late
        ],
    )


def _year_view(year: YearStanding, announced: EmittedYear | None, rule_version: str, finished: bool) -> TraineeYearView:
    completion = year.completion
    return TraineeYearView(
        fiscal_year=year.fiscal_year,
        fiscal_year_label=fiscal_year_label_ja(year.fiscal_year),
        nomination_id=year.nomination_id,
        stage=year.stage,
        stage_name=Words(ja=stage_ja(year.stage), en=stage_en(year.stage)) if year.stage else None,
        decision=year.kind.value,
        from_stage=year.from_stage,
        reason=year.reason.value if year.reason else None,
        status="final" if year.final else "provisional",
        decided_by_fiscal_year=year.deciding_fiscal_year,
        awaiting_fiscal_year=year.awaiting_fiscal_year,
        completed=completion is not None,
        finished=finished,
        completion=StageCompletionView(
            stage=completion.stage, completed_at=completion.completed_at, evidence=list(completion.evidence)
        )
        if completion
        else None,
        evidence=list(year.evidence),
        decision_event_id=announced.event_id if announced and announced.live else None,
        rule_version=rule_version,
        explanation=Words(**vars(explain_year(year))),
    )
