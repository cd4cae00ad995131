"""HTTP for the training service: sessions, curricula, attendance, backfill, waivers and the webhook."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dx_shared.access import CallerDep, require, requires_scope
from dx_shared.bulk import off_loop
from dx_shared.clock import Clock, ClockDep
from dx_shared.contracts import Audience, Method, MoveOn
from dx_shared.logging import get_logger
from dx_shared.metrics import WEBHOOK_ID_REUSED
from dx_shared.plausibility import accepted_fiscal_year, skew_of
from dx_shared.problems import ProblemError
from dx_shared.roles import OFFICES, SEES_EVERYTHING, Role, Scope
from dx_shared.service import DirectRoute, PoolDep, SettingsDep
from dx_shared.settings import Settings
from dx_shared.uploads import read_body
from training import handlers
from training.backfill import BackfillUnreadable, read_backfill
from training.domain import (
    ActorRequired,
    AttendanceNotApplicable,
    CapacityExceeded,
    Completion,
    CurriculumRevision,
    CurriculumSessionMismatch,
    EmptyCurriculum,
    FactWindow,
    FiscalYearOutOfRange,
    InvalidSession,
    InvalidStage,
    OccurredInFuture,
    ReasonRequired,
    ReportedResult,
    Session,
    SessionAlreadyExists,
    TrainingRuleViolation,
    UnknownSession,
    UnknownStaff,
    UnknownUnmatched,
    UnmatchedAlreadyResolved,
    Waiver,
    WaiverNotPermitted,
)
from training.statements import MAX_BATCH, UnsupportedPayload, payload_digest, read_batch, read_document
from training.webhook import WebhookRefused, WebhookVerifier, parse_json

log = get_logger(__name__)
router = APIRouter()


_STATUS_OF: dict[type[TrainingRuleViolation], int] = {
    UnknownSession: 404,
    UnknownStaff: 422,
    CapacityExceeded: 409,
    AttendanceNotApplicable: 409,
    SessionAlreadyExists: 409,
    InvalidSession: 422,
    InvalidStage: 422,
    EmptyCurriculum: 422,
    CurriculumSessionMismatch: 422,
    WaiverNotPermitted: 403,
    ActorRequired: 422,
    ReasonRequired: 422,
    OccurredInFuture: 422,
    FiscalYearOutOfRange: 422,
    UnknownUnmatched: 404,
    UnmatchedAlreadyResolved: 409,
}


def _problem(error: TrainingRuleViolation) -> ProblemError:
    return ProblemError(
        status=_STATUS_OF.get(type(error), 422),
        code=error.code,
        title_en=error.title_en,
        title_ja=error.title_ja,
        detail=error.detail,
        **{key: value for key, value in error.facts.items() if value is not None},  # type: ignore[arg-type]
    )


def _unavailable(exc: Exception) -> ProblemError:
    log.warning("database_unavailable", error=type(exc).__name__)
    return ProblemError(
        status=503,
        code="SERVICE_UNAVAILABLE",
        title_en="The database is unavailable; nothing was recorded, please retry",
        title_ja="データベースに接続できません。何も記録されていません。再送してください",
    )


# A deadlock or serialization failure is transient too: the sender retries and nothing was recorded.
_INFRASTRUCTURE_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TransactionRollbackError,
    OSError,
    asyncio.TimeoutError,
)

# ---- wire shapes ------------------------------------------------------------------------------

FiscalYear = Annotated[
    int | Annotated[str, Field(max_length=16)], Field(description="2025, FY2025, R7 or 令和7年度", examples=[2025])
]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(None, min_length=1, max_length=200, description="generated when absent")
    fiscal_year: FiscalYear
    method: Method
    audience: Audience
    stage: int | None = Field(None, description="1-5, for audience `promoter` only")
    title: str = Field(min_length=1, max_length=500)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    capacity: int | None = None
    move_on: MoveOn = MoveOn.COMPLETED
    xapi_activity_id: str | None = Field(None, min_length=1, max_length=500)


class SessionView(BaseModel):
    session_id: str
    fiscal_year: int
    method: Method
    audience: Audience
    stage: int | None
    title: str
    starts_at: datetime | None
    ends_at: datetime | None
    capacity: int | None
    move_on: MoveOn
    xapi_activity_id: str | None

    @classmethod
    def of(cls, session: Session) -> SessionView:
        return cls(**session.__dict__)


class CurriculumRequest(BaseModel):
    session_ids: list[Id] = Field(max_length=500)


class RevisionView(BaseModel):
    revision: int
    session_ids: list[str]
    published_at: datetime


class CurriculumView(BaseModel):
    fiscal_year: int
    stage: int
    revision: int
    session_ids: list[str]
    published_at: datetime
    changed: bool = Field(description="whether this request published a new revision")
    revisions: list[RevisionView] = Field(description="every published revision, oldest first")

    @classmethod
    def of(cls, state: handlers.CurriculumState) -> CurriculumView:
        latest: CurriculumRevision = state.latest
        return cls(
            fiscal_year=latest.fiscal_year,
            stage=latest.stage,
            revision=latest.revision,
            session_ids=list(latest.session_ids),
            published_at=state.published_at,
            changed=state.changed,
            revisions=[
                RevisionView(revision=r.revision, session_ids=list(r.session_ids), published_at=at)
                for r, at in state.history
            ],
        )


class AttendanceRequest(BaseModel):
    staff_ids: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=1000)
    occurred_at: AwareDatetime | None = Field(None, description="default: the session's end, else its start")


class CompletionView(BaseModel):
    completion_id: str
    session_id: str
    staff_id: str
    fiscal_year: int
    method: Method
    occurred_at: datetime
    recorded_at: datetime
    source: str
    success: bool | None = None
    score: float | None = None

    @classmethod
    def of(cls, completion: Completion) -> CompletionView:
        return cls(**{**completion.__dict__, "source": completion.source.value})


class AttendanceView(BaseModel):
    session_id: str
    recorded: list[CompletionView]
    already_recorded: list[str] = Field(description="staff ids whose completion of this session existed")


class WaiverRequest(BaseModel):
    """Who waives is the access token's subject; an `actor` in the body is ignored."""

    session_id: str = Field(min_length=1, max_length=200)
    staff_id: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=2000)
    fiscal_year: FiscalYear | None = Field(None, description="default: the session's fiscal year")


class WaiverView(BaseModel):
    waiver_id: str
    session_id: str
    staff_id: str
    fiscal_year: int
    actor: str = Field(description="the subject of the access token that recorded the waiver")
    reason: str
    recorded_at: datetime
    created: bool

    @classmethod
    def of(cls, waiver: Waiver, created: bool) -> WaiverView:
        return cls(**waiver.__dict__, created=created)


class ImportRowView(BaseModel):
    line: int
    status: str = Field(description="recorded / duplicate / rejected")
    completion_id: str | None = None
    code: str | None = None
    detail: str | None = None


class ImportView(BaseModel):
    recorded: int
    duplicates: int
    rejected: int
    rows: list[ImportRowView]


class WebhookReceipt(BaseModel):
    status: handlers.ReceiptStatus
    completion: CompletionView | None = None
    unmatched_id: str | None = None
    reason: str | None = None
    move_on: str | None = None

    @classmethod
    def of(cls, receipt: handlers.Receipt) -> WebhookReceipt:
        return cls(
            status=receipt.status,
            completion=CompletionView.of(receipt.completion) if receipt.completion else None,
            unmatched_id=receipt.unmatched_id,
            reason=receipt.reason,
            move_on=receipt.extra.get("move_on"),
        )


class WebhookBatchReceipt(BaseModel):
    webhook_id: str
    receipts: list[WebhookReceipt] = Field(description="one per statement, in the batch's order")


def _window(settings: Settings, clock: Clock) -> FactWindow:
    return FactWindow(now=clock(), skew=skew_of(settings), first_fiscal_year=settings.first_fiscal_year)


def _refuse_future_reports(reports: list[ReportedResult | None], window: FactWindow) -> None:
    """A delivery reporting anything dated in the future (or before the first year) is refused whole."""
    for reported in reports:
        if reported is None:
            continue
        try:
            window.check_occurred(reported.occurred_at)
        except TrainingRuleViolation as exc:
            log.info("webhook_refused", code=exc.code)
            raise _problem(exc) from exc


# ---- sessions ---------------------------------------------------------------------------------


@router.post(
    "/api/v1/sessions",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    status_code=201,
    response_model=SessionView,
    tags=["sessions"],
)
async def schedule_session(
    body: SessionRequest,
    pool: PoolDep,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> SessionView:
    """Schedules a session (SessionScheduled). The same session again answers 200 and changes nothing."""
    require(caller, OFFICES, "schedule sessions", "研修の登録")
    fiscal_year = accepted_fiscal_year(body.fiscal_year, settings, clock())
    requested = Session(
        session_id=body.session_id or f"FY{fiscal_year}-{uuid.uuid4().hex[:12]}",
        fiscal_year=fiscal_year,
        method=body.method,
        audience=body.audience,
        title=body.title,
        move_on=body.move_on,
        stage=body.stage,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
        xapi_activity_id=body.xapi_activity_id,
    )
    try:
        session, created = await handlers.schedule(pool, requested)
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    except asyncpg.UniqueViolationError as exc:
        raise ProblemError(
            status=409,
            code="XAPI_ACTIVITY_TAKEN",
            title_en="Another session already has this xAPI activity id",
            title_ja="このxAPIアクティビティIDは別の研修で使われています",
        ) from exc
    if not created:
        response.status_code = 200
    return SessionView.of(session)


@router.get(
    "/api/v1/sessions",
    dependencies=[requires_scope(Scope.TRAINING_READ)],
    response_model=list[SessionView],
    tags=["sessions"],
)
async def list_sessions(
    pool: PoolDep, settings: SettingsDep, clock: ClockDep, fiscal_year: str | None = None
) -> list[SessionView]:
    year = accepted_fiscal_year(fiscal_year, settings, clock()) if fiscal_year else None
    return [SessionView.of(session) for session in await handlers.sessions(pool, year)]


# ---- curricula --------------------------------------------------------------------------------


@router.put(
    "/api/v1/curricula/{fiscal_year}/{stage}",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    response_model=CurriculumView,
    tags=["curricula"],
)
async def set_curriculum(
    fiscal_year: str,
    stage: int,
    body: CurriculumRequest,
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CurriculumView:
    """Sets the required sessions of a stage; a change publishes the next revision (CurriculumPublished)."""
    require(caller, OFFICES, "set a curriculum", "カリキュラムの設定")
    year = accepted_fiscal_year(fiscal_year, settings, clock())
    try:
        state = await handlers.publish_curriculum(pool, year, stage, body.session_ids)
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    return CurriculumView.of(state)


@router.get(
    "/api/v1/curricula/{fiscal_year}/{stage}",
    dependencies=[requires_scope(Scope.TRAINING_READ)],
    response_model=CurriculumView,
    tags=["curricula"],
)
async def get_curriculum(
    fiscal_year: str, stage: int, pool: PoolDep, settings: SettingsDep, clock: ClockDep
) -> CurriculumView:
    state = await handlers.curriculum(pool, accepted_fiscal_year(fiscal_year, settings, clock()), stage)
    if state is None:
        raise ProblemError(
            status=404,
            code="UNKNOWN_CURRICULUM",
            title_en="No curriculum has been published for this stage and fiscal year",
            title_ja="この年度・ステージのカリキュラムは公開されていません",
        )
    return CurriculumView.of(state)


# ---- attendance, backfill, waivers, completions -----------------------------------------------


@router.post(
    "/api/v1/sessions/{session_id}/attendance",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    response_model=AttendanceView,
    tags=["completions"],
)
async def record_attendance(
    session_id: str,
    body: AttendanceRequest,
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> AttendanceView:
    """Classroom / hands-on attendance: SessionCompleted (source=attendance) per person newly present.
    Attendance dated in the future (stated, or by default a session that has not ended) is refused (422)."""
    require(caller, OFFICES, "record attendance", "出席の記録")
    try:
        recorded, already = await handlers.record_attendance(
            pool, session_id, body.staff_ids, body.occurred_at, _window(settings, clock)
        )
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    return AttendanceView(
        session_id=session_id, recorded=[CompletionView.of(c) for c in recorded], already_recorded=already
    )


@router.post(
    "/api/v1/completions/import",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    response_model=ImportView,
    tags=["completions"],
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_completions(
    request: Request, pool: PoolDep, settings: SettingsDep, caller: CallerDep, clock: ClockDep
) -> ImportView:
    """CSV backfill of past completions (source=import); a row already imported is reported `duplicate`,
    a row dated in the future or outside the accepted fiscal years is `rejected` with its code."""
    require(caller, OFFICES, "import completions", "修了記録の取込み")
    raw = await read_body(request, settings.max_upload_bytes)
    try:
        # Parsing a large file takes a while: off the event loop, so the service keeps answering.
        rows = await off_loop(read_backfill, raw)
    except BackfillUnreadable as exc:
        raise ProblemError(
            status=exc.status, code=exc.code, title_en=exc.title_en, title_ja=exc.title_ja, detail=str(exc)
        ) from exc
    outcomes = await handlers.import_completions(pool, rows, _window(settings, clock))
    views = [ImportRowView(**outcome.__dict__) for outcome in outcomes]
    return ImportView(
        recorded=sum(v.status == "recorded" for v in views),
        duplicates=sum(v.status == "duplicate" for v in views),
        rejected=sum(v.status == "rejected" for v in views),
        rows=views,
    )


@router.post(
    "/api/v1/completions/waive",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    status_code=201,
    response_model=WaiverView,
    tags=["completions"],
)
async def waive_completion(
    body: WaiverRequest,
    pool: PoolDep,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> WaiverView:
    """Records a waiver (CompletionWaived); the same person, session and year again answers 200.
    A waiver for a fiscal year that has not begun is refused (422 OCCURRED_IN_FUTURE). The waiver's `actor` is
    the token's subject, never a value from the body."""
    now = clock()
    fiscal_year = accepted_fiscal_year(body.fiscal_year, settings, now) if body.fiscal_year is not None else None
    try:
        waiver, created = await handlers.waive(
            pool,
            caller.role,
            session_id=body.session_id,
            staff_id=body.staff_id,
            actor=caller.subject or "",
            reason=body.reason,
            fiscal_year=fiscal_year,
            window=_window(settings, lambda: now),
        )
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    if not created:
        response.status_code = 200
    return WaiverView.of(waiver, created)


@router.get(
    "/api/v1/completions",
    dependencies=[requires_scope(Scope.TRAINING_READ)],
    response_model=list[CompletionView],
    tags=["completions"],
)
async def list_completions(
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
    fiscal_year: str | None = None,
    session_id: str | None = None,
    staff_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    # Trainees see their own completions; the offices everyone's (POLICY.md §5).
    if caller.role is Role.TRAINEE:
        staff_id = caller.staff_id
    else:
        require(caller, SEES_EVERYTHING, "list completions", "修了記録の一覧")
    return await handlers.completions(
        pool,
        fiscal_year=accepted_fiscal_year(fiscal_year, settings, clock()) if fiscal_year else None,
        session_id=session_id,
        staff_id=staff_id,
        limit=limit,
    )


@router.get("/api/v1/completions/unmatched", dependencies=[requires_scope(Scope.TRAINING_READ)], tags=["completions"])
async def list_unmatched(
    pool: PoolDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    include_resolved: Annotated[
        bool, Query(description="also list those matched later (resolved: true, with resolved_at and resolution)")
    ] = False,
) -> list[dict[str, Any]]:
    """Reported results naming an unknown session or person, newest first: by default only those still
    unresolved. One is resolved when the session it names is scheduled or a roster lists the person, and
    is then matched as on arrival (resolution completed / already_completed / not_met)."""
    require(caller, SEES_EVERYTHING, "see unmatched reports", "照合できない報告の閲覧")
    return await handlers.unmatched(pool, limit, include_resolved=include_resolved)


class HandMatchRequest(BaseModel):
    """The person (and, when the report named a session that does not exist, the session) it meant."""

    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=200)
    session_id: str | None = Field(None, min_length=1, max_length=200, description="default: the reported one")


class DismissalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class ResolutionView(BaseModel):
    unmatched_id: str
    resolution: str = Field(description="completed, already_completed, not_met (matched by hand) or dismissed")
    completion_id: str | None = Field(description="the completion it made, when it made one")
    staff_id: str | None
    session_id: str | None
    resolved_at: datetime
    resolved_by: str = Field(description="the subject of the access token that resolved it")


def _resolution_view(resolution: handlers.OfficeResolution, actor: str) -> ResolutionView:
    return ResolutionView(**resolution.__dict__, resolved_by=actor)


@router.post(
    "/api/v1/completions/unmatched/{unmatched_id}/match",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    response_model=ResolutionView,
    tags=["completions"],
)
async def match_unmatched(
    unmatched_id: str,
    body: HandMatchRequest,
    pool: PoolDep,
    caller: CallerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ResolutionView:
    """照合（手作業）: an office matches an unmatched report to the staff id (and session) it meant; the
    completion then follows as an automatically matched one would (SessionCompleted, CompletionRematched).
    A report already matched or dismissed is refused (409 UNMATCHED_ALREADY_RESOLVED)."""
    require(caller, OFFICES, "match an unmatched report", "照合できない報告の照合")
    actor = caller.subject or ""
    try:
        resolution = await handlers.match_by_hand(
            pool,
            unmatched_id,
            staff_id=body.staff_id,
            session_ref=body.session_id,
            actor=actor,
            window=_window(settings, clock),
        )
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    return _resolution_view(resolution, actor)


@router.post(
    "/api/v1/completions/unmatched/{unmatched_id}/dismiss",
    dependencies=[requires_scope(Scope.TRAINING_WRITE)],
    response_model=ResolutionView,
    tags=["completions"],
)
async def dismiss_unmatched(
    unmatched_id: str, body: DismissalRequest, pool: PoolDep, caller: CallerDep
) -> ResolutionView:
    """対象外: an office takes an unmatched report off the queue with its reason; it makes no completion.
    A report already matched or dismissed is refused (409 UNMATCHED_ALREADY_RESOLVED)."""
    require(caller, OFFICES, "dismiss an unmatched report", "照合できない報告の対象外処理")
    actor = caller.subject or ""
    try:
        resolution = await handlers.dismiss_unmatched(pool, unmatched_id, reason=body.reason, actor=actor)
    except TrainingRuleViolation as exc:
        raise _problem(exc) from exc
    return _resolution_view(resolution, actor)


# ---- the e-learning webhook -------------------------------------------------------------------


@lru_cache(maxsize=4)
def _verifier(secrets: str) -> WebhookVerifier:
    verifier = WebhookVerifier(secrets.split())
    if verifier.unusable_secrets:
        log.warning("webhook_secret_unusable", count=verifier.unusable_secrets)
    return verifier


_ID_KIND_JA = {"webhook-id": "webhook-id", "statement id": "ステートメントID", "completion id": "修了ID"}


def _refused(error: WebhookRefused | UnsupportedPayload) -> ProblemError:
    if isinstance(error, UnsupportedPayload):
        return ProblemError(
            status=error.status,
            code=error.code,
            title_en=error.title_en,
            title_ja=error.title_ja,
            detail=error.detail,
            errors=error.errors,
            **error.facts,  # type: ignore[arg-type]
        )
    return ProblemError(
        status=error.status, code=error.code, title_en=error.title_en, title_ja=error.title_ja, detail=error.detail
    )


async def elearning_webhook(request: Request) -> Response:
    """A completion from the e-learning platform, signed per Standard Webhooks.

    Body: `{"type": "completion", "session_id", "staff_id", "occurred_at", "success"?, "score"?,
    "completion_id"?}`, an xAPI statement, or an array of 1-100 xAPI statements (a batch).
    One document: 200 = a completion was recorded (or this delivery/statement was already received with
    the same body; the same id with a different body is refused 409 DELIVERY_ID_REUSED);
    202 = recorded without a completion. A batch: 200 with one receipt per statement, in order, once all
    of them are committed together (one unreadable statement refuses the whole batch with 422).
    Any 2xx means it is durably stored.
    """
    # A `DirectRoute`: called with the request alone, so it takes the service's state itself and returns
    # its JSON already serialised (what a delivery costs is most of what the platform's posting costs).
    state = request.app.state
    pool: asyncpg.Pool = state.pool
    settings: Settings = state.settings
    clock: Clock = state.clock
    # The audit trail names the sender: the platform holding the webhook secret, not a person.
    request.state.audit_subject = "webhook"
    body = await read_body(request, settings.max_body_bytes)
    try:
        delivery = _verifier(" ".join(settings.webhook_secret_list)).verify(body, dict(request.headers))
        request.state.audit_target = {"webhook_id": delivery.webhook_id}
        document = parse_json(delivery)
        if isinstance(document, list):
            batch = read_batch(document, webhook_id=delivery.webhook_id, sent_at=delivery.sent_at)
        else:
            reported = read_document(document, webhook_id=delivery.webhook_id, sent_at=delivery.sent_at)
    except (WebhookRefused, UnsupportedPayload) as exc:
        log.info("webhook_refused", code=exc.code)
        raise _refused(exc) from exc
    digest = payload_digest(document)
    _refuse_future_reports(
        [item.reported for item in batch] if isinstance(document, list) else [reported], _window(settings, clock)
    )
    try:
        if isinstance(document, list):
            receipts = await handlers.receive_batch(pool, delivery.webhook_id, batch, digest)
        else:
            receipt = await handlers.receive_report(pool, delivery.webhook_id, reported, delivery.text, digest)
    except handlers.DeliveryIdReused as exc:
        WEBHOOK_ID_REUSED.labels("training", exc.id_kind).inc()
        log.warning("webhook_delivery_id_reused", webhook_id=delivery.webhook_id, id_kind=exc.id_kind)
        raise ProblemError(
            status=409,
            code="DELIVERY_ID_REUSED",
            title_en=f"This {exc.id_kind} was received before with a different body; nothing was recorded",
            title_ja=f"この{_ID_KIND_JA.get(exc.id_kind, exc.id_kind)}は以前に別の内容で受信済みです。何も記録していません",
            detail="A retry must repeat the same body; a new result needs a new id.",
            id_kind=exc.id_kind,
        ) from exc
    except _INFRASTRUCTURE_ERRORS as exc:
        raise _unavailable(exc) from exc
    if isinstance(document, list):
        log.info("webhook_batch_received", webhook_id=delivery.webhook_id, statements=len(receipts))
        batch_receipt = WebhookBatchReceipt(
            webhook_id=delivery.webhook_id, receipts=[WebhookReceipt.of(receipt) for receipt in receipts]
        )
        return _json_response(batch_receipt, 200)
    log.info("webhook_received", webhook_id=delivery.webhook_id, status=receipt.status.value)
    without_completion = receipt.status in {
        handlers.ReceiptStatus.NOT_MET,
        handlers.ReceiptStatus.UNMATCHED,
        handlers.ReceiptStatus.IGNORED,
    }
    return _json_response(WebhookReceipt.of(receipt), 202 if without_completion else 200)


def _json_response(model: BaseModel, status: int) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


router.add_api_route(
    "/webhooks/elearning",
    elearning_webhook,
    methods=["POST"],
    route_class_override=DirectRoute,
    response_model=WebhookReceipt | WebhookBatchReceipt,
    tags=["webhooks"],
    responses={
        202: {"model": WebhookReceipt, "description": "recorded without a completion (not met / unmatched)"},
        400: {"description": "missing or garbled webhook headers, malformed or non-UTF-8 JSON"},
        401: {"description": "signature matches no configured secret, or timestamp beyond ±5 minutes"},
        409: {
            "description": "DELIVERY_ID_REUSED: a webhook-id, statement id or completion id seen before, with a different body"
        },
        413: {"description": f"body over the limit (256 KiB), or a batch of more than {MAX_BATCH} statements"},
        422: {
            "description": "JSON that is neither a completion document, an xAPI statement nor a batch of them; "
            "or a result dated in the future (OCCURRED_IN_FUTURE, beyond the configured clock skew) or in a "
            "fiscal year before the first one (FISCAL_YEAR_OUT_OF_RANGE)"
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
                }
            }
        }
    },
)
