"""The training use cases: load → decide (domain) → save the effect and its events in one transaction.

The HTTP layer (api.py) and the bus subscriber below call these; none of them holds a rule of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg

from dx_shared import contracts as c
from dx_shared.calendar import fiscal_year_of
from dx_shared.consumer import Subscription
from dx_shared.envelope import CloudEvent, deterministic_id, new_event
from dx_shared.logging import get_logger
from dx_shared.outbox import enqueue
from dx_shared.roles import Role
from training.backfill import BackfillRow, BackfillRowError
from training.domain import (
    DISMISSED,
    Completion,
    CurriculumRevision,
    FactWindow,
    ReportedResult,
    Session,
    TrainingRuleViolation,
    UnmatchedReason,
    UnmatchedResult,
    Waiver,
    attendance_time,
    check_hand_match,
    complete_from_report,
    completion_if_met,
    curriculum_event_id,
    dismissal_reason,
    import_completion,
    listed_on_roster,
    matched_by_hand,
    names_session,
    open_entry,
    outcomes_meeting,
    reschedule_is_repeat,
    revise_curriculum,
    schedule_session,
    session_refs,
    take_attendance,
    unmatched_id_for,
    unmatched_reason,
    waive_completion,
)
from training.repository import ClaimedReport, ProgressAdded, SettledStatuses, TrainingRepository
from training.statements import BatchItem

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


# ---- events -----------------------------------------------------------------------------------


def session_completed_event(completion: Completion) -> CloudEvent:
    return new_event(
        c.SessionCompleted(
            completion_id=completion.completion_id,
            session_id=completion.session_id,
            staff_id=completion.staff_id,
            fiscal_year=completion.fiscal_year,
            method=completion.method,
            occurred_at=completion.occurred_at,
            recorded_at=completion.recorded_at,
            source=completion.source,
            success=completion.success,
            score=completion.score,
        ),
        subject=completion.staff_id,
        event_id=deterministic_id("training.SessionCompleted", completion.completion_id),
        time=completion.recorded_at,
    )


def session_scheduled_event(session: Session) -> CloudEvent:
    return new_event(
        c.SessionScheduled(
            session_id=session.session_id,
            fiscal_year=session.fiscal_year,
            method=session.method,
            audience=session.audience,
            stage=session.stage,
            title=session.title,
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            capacity=session.capacity,
            move_on=session.move_on,
            xapi_activity_id=session.xapi_activity_id,
        ),
        event_id=deterministic_id("training.SessionScheduled", session.session_id),
    )


def curriculum_published_event(revision: CurriculumRevision) -> CloudEvent:
    return new_event(
        c.CurriculumPublished(
            fiscal_year=revision.fiscal_year,
            stage=revision.stage,
            session_ids=list(revision.session_ids),
            revision=revision.revision,
        ),
        event_id=curriculum_event_id(revision),
    )


def completion_waived_event(waiver: Waiver) -> CloudEvent:
    return new_event(
        c.CompletionWaived(
            waiver_id=waiver.waiver_id,
            session_id=waiver.session_id,
            staff_id=waiver.staff_id,
            fiscal_year=waiver.fiscal_year,
            actor=waiver.actor,
            reason=waiver.reason,
            recorded_at=waiver.recorded_at,
        ),
        subject=waiver.staff_id,
        event_id=deterministic_id("training.CompletionWaived", waiver.waiver_id),
        time=waiver.recorded_at,
    )


# ---- sessions and curricula -------------------------------------------------------------------


async def schedule(pool: asyncpg.Pool, requested: Session) -> tuple[Session, bool]:
    """Returns the session and whether it was new (a repeat of the same session changes nothing)."""
    session = schedule_session(requested)
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        if await repo.add_session(session):
            await enqueue(conn, session_scheduled_event(session))
            waiting = await repo.lock_unresolved_naming(
                [session.session_id, session.xapi_activity_id or session.session_id]
            )
            await _rematch(conn, repo, [unmatched for unmatched in waiting if names_session(unmatched, session)])
            return session, True
        existing = await repo.session(session.session_id)
        assert existing is not None
        reschedule_is_repeat(existing, session)
        return existing, False


async def sessions(pool: asyncpg.Pool, fiscal_year: int | None) -> list[Session]:
    async with pool.acquire() as conn:
        return await TrainingRepository(conn).sessions(fiscal_year)


@dataclass(frozen=True)
class CurriculumState:
    latest: CurriculumRevision
    published_at: datetime
    history: list[tuple[CurriculumRevision, datetime]]
    changed: bool = False


async def publish_curriculum(
    pool: asyncpg.Pool, fiscal_year: int, stage: int, session_ids: Sequence[str]
) -> CurriculumState:
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        await repo.lock_curriculum(fiscal_year, stage)
        history = await repo.curriculum_revisions(fiscal_year, stage)
        sessions = await repo.sessions_by_id(session_ids)
        latest = history[-1][0] if history else None
        revision = revise_curriculum(fiscal_year, stage, session_ids, sessions, latest)
        if revision is None:
            assert latest is not None
            return CurriculumState(latest, history[-1][1], history)
        published_at = _now()
        await repo.add_curriculum_revision(revision, published_at)
        await enqueue(conn, curriculum_published_event(revision))
        return CurriculumState(revision, published_at, [*history, (revision, published_at)], changed=True)


async def curriculum(pool: asyncpg.Pool, fiscal_year: int, stage: int) -> CurriculumState | None:
    async with pool.acquire() as conn:
        history = await TrainingRepository(conn).curriculum_revisions(fiscal_year, stage)
    if not history:
        return None
    return CurriculumState(history[-1][0], history[-1][1], history)


# ---- reported results (the e-learning webhook) ------------------------------------------------


class ReceiptStatus(StrEnum):
    COMPLETED = "completed"  # a new completion was recorded and SessionCompleted emitted
    ALREADY_COMPLETED = "already_completed"  # the person had completed this session in that year
    NOT_MET = "not_met"  # recorded; the session's move_on is not met yet
    UNMATCHED = "unmatched"  # recorded as unmatched (unknown session or person); CompletionUnmatched
    IGNORED = "ignored"  # a statement whose verb completes nothing
    DUPLICATE = "duplicate"  # this delivery or this statement was received before


@dataclass(frozen=True)
class Receipt:
    status: ReceiptStatus
    completion: Completion | None = None
    unmatched_id: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DeliveryIdReused(Exception):
    """An id seen before (webhook-id, xAPI statement id or completion id) arrived with a different body:
    not a retry. Nothing of the delivery is recorded."""

    def __init__(self, id_kind: str) -> None:
        super().__init__(f"a {id_kind} was reused with a different body")
        self.id_kind = id_kind


def id_kind_of(source_key: str) -> str:
    """Which of the sender's ids keys a reported result (pure)."""
    if source_key.startswith("xapi:"):
        return "statement id"
    if source_key.startswith("completion:"):
        return "completion id"
    return "webhook-id"


def _reused(stored: str | None, digest: str) -> bool:
    # A row stored before digests were kept has none: it is taken as a retry, as it was then.
    return stored is not None and stored != digest


async def _refuse_a_reused_delivery(repo: TrainingRepository, webhook_id: str, digest: str) -> None:
    if _reused(await repo.delivery_digest(webhook_id), digest):
        raise DeliveryIdReused("webhook-id")


async def _refuse_a_reused_report(repo: TrainingRepository, source_key: str, digest: str) -> None:
    if _reused(await repo.report_digest(source_key), digest):
        raise DeliveryIdReused(id_kind_of(source_key))


async def receive_report(
    pool: asyncpg.Pool, webhook_id: str, reported: ReportedResult | None, body: str, digest: str
) -> Receipt:
    """Records a verified delivery; returns only after everything it caused is committed. `digest` is the
    delivery's `payload_digest`: a seen id with another digest raises `DeliveryIdReused` (rolled back)."""
    recorded_at = _now()
    if reported is None:
        async with pool.acquire() as conn:
            repo = TrainingRepository(conn)
            claimed = await repo.claim_delivery(webhook_id, recorded_at, ReceiptStatus.IGNORED, digest)
            if not claimed:
                await _refuse_a_reused_delivery(repo, webhook_id, digest)
        return Receipt(ReceiptStatus.IGNORED if claimed else ReceiptStatus.DUPLICATE)
    async with pool.acquire() as conn:
        at_once = await _record_at_once(TrainingRepository(conn), webhook_id, reported, body, digest, recorded_at)
    if at_once is not None:
        return at_once
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        claim = await repo.claim_report(
            webhook_id,
            reported,
            session_refs(reported.session_ref),
            recorded_at,
            body,
            delivery_digest=digest,
            payload_digest=digest,
        )
        if not claim.delivery_claimed:
            await _refuse_a_reused_delivery(repo, webhook_id, digest)
            return Receipt(ReceiptStatus.DUPLICATE)
        if not claim.report_claimed:
            await _refuse_a_reused_report(repo, reported.source_key, digest)
            await repo.settle_delivery(webhook_id, ReceiptStatus.DUPLICATE, reported.source_key)
            return Receipt(ReceiptStatus.DUPLICATE)
        return await _match_report(conn, repo, webhook_id, reported, claim, recorded_at)


BATCH_DELIVERY_STATUS = "batch"


async def receive_batch(pool: asyncpg.Pool, webhook_id: str, items: Sequence[BatchItem], digest: str) -> list[Receipt]:
    """Records every statement of a verified batch in one transaction, each as if it had come alone;
    receipts in the batch's order. A retried delivery changes nothing and is answered `duplicate`; a
    reused id with another body refuses the whole batch (`DeliveryIdReused`, nothing recorded)."""
    recorded_at = _now()
    receipts: dict[int, Receipt] = {}
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        if not await repo.claim_delivery(webhook_id, recorded_at, BATCH_DELIVERY_STATUS, digest):
            await _refuse_a_reused_delivery(repo, webhook_id, digest)
            return [Receipt(ReceiptStatus.DUPLICATE) for _ in items]
        for position in _lock_order(items):
            reported = items[position].reported
            if reported is None:
                receipts[position] = Receipt(ReceiptStatus.IGNORED)
                continue
            claim = await repo.claim_report(
                webhook_id,
                reported,
                session_refs(reported.session_ref),
                recorded_at,
                items[position].text,
                delivery_digest=digest,
                payload_digest=items[position].digest,
                delivery_claimed=True,
            )
            if not claim.report_claimed:
                await _refuse_a_reused_report(repo, reported.source_key, items[position].digest)
                receipts[position] = Receipt(ReceiptStatus.DUPLICATE)
                continue
            receipts[position] = await _match_report(conn, repo, None, reported, claim, recorded_at)
    return [receipts[position] for position in range(len(items))]


def _lock_order(items: Sequence[BatchItem]) -> list[int]:
    """Statements are stored in one order (person, activity, statement) whatever the batch's order, so
    that two batches sharing statements or people lock their rows in the same order and never deadlock."""

    def key(position: int) -> tuple[str, str, str]:
        reported = items[position].reported
        return ("", "", "") if reported is None else (reported.staff_id, reported.session_ref, reported.source_key)

    return sorted(range(len(items)), key=key)


async def _match_report(
    conn: asyncpg.Connection,
    repo: TrainingRepository,
    webhook_id: str | None,
    reported: ReportedResult,
    claim: ClaimedReport,
    recorded_at: datetime,
) -> Receipt:
    reason = unmatched_reason(claim.session, claim.on_roster)
    if reason is not None:
        unmatched_id = unmatched_id_for(reported.source_key)
        if await repo.add_unmatched(webhook_id, unmatched_id, reported, reason, recorded_at, ReceiptStatus.UNMATCHED):
            await enqueue(conn, _unmatched_event(unmatched_id, reported, reason, recorded_at))
        return Receipt(ReceiptStatus.UNMATCHED, unmatched_id=unmatched_id, reason=reason.value)
    session = claim.session
    assert session is not None
    candidate = completion_if_met(session, reported, recorded_at)
    added = await repo.add_progress_and_completion(
        webhook_id,
        reported,
        candidate,
        _settled_statuses(session),
        # Added to the outbox by the same statement, only if the completion was recorded.
        completed_event=session_completed_event(candidate),
    )
    return _matched_receipt(session, reported, candidate, added, recorded_at)


def _settled_statuses(session: Session) -> SettledStatuses:
    return SettledStatuses(
        meeting=outcomes_meeting(session.move_on),
        completed=ReceiptStatus.COMPLETED,
        already_completed=ReceiptStatus.ALREADY_COMPLETED,
        not_met=ReceiptStatus.NOT_MET,
    )


async def _record_at_once(
    repo: TrainingRepository,
    webhook_id: str,
    reported: ReportedResult,
    body: str,
    digest: str,
    recorded_at: datetime,
) -> Receipt | None:
    """The common case in two statements and no explicit transaction: a new delivery of a new report that
    matches a session and the roster is read, decided (the same rules as in `_match_report`), then
    recorded whole by one statement. None when it is anything else — a retry, a reused id, an unmatched
    report — or was received meanwhile: the transactional path then decides, as it always did."""
    context = await repo.report_context(webhook_id, reported, session_refs(reported.session_ref))
    if context.seen or unmatched_reason(context.session, context.on_roster) is not None:
        return None
    session = context.session
    assert session is not None
    candidate = completion_if_met(session, reported, recorded_at)
    try:
        added = await repo.record_report_at_once(
            webhook_id,
            reported,
            candidate,
            _settled_statuses(session),
            received_at=recorded_at,
            body=body,
            digest=digest,
            completed_event=session_completed_event(candidate),
        )
    except asyncpg.UniqueViolationError:
        return None
    return _matched_receipt(session, reported, candidate, added, recorded_at)


def _matched_receipt(
    session: Session, reported: ReportedResult, candidate: Completion, added: ProgressAdded, recorded_at: datetime
) -> Receipt:
    status = ReceiptStatus(added.status)
    assert (complete_from_report(session, reported, added.shown, recorded_at) is None) == (
        status is ReceiptStatus.NOT_MET
    )
    if status is ReceiptStatus.NOT_MET:
        return Receipt(status, extra={"move_on": session.move_on.value})
    return Receipt(status, completion=candidate)


def _unmatched_event(
    unmatched_id: str, reported: ReportedResult, reason: UnmatchedReason, received_at: datetime
) -> CloudEvent:
    return new_event(
        c.CompletionUnmatched(
            unmatched_id=unmatched_id,
            reason=reason.value,
            session_ref=reported.session_ref,
            staff_id=reported.staff_id,
            received_at=received_at,
            occurred_at=reported.occurred_at,
            source=reported.source.value,
        ),
        subject=reported.staff_id,
        event_id=deterministic_id("training.CompletionUnmatched", unmatched_id),
        time=received_at,
    )


async def _rematch(conn: asyncpg.Connection, repo: TrainingRepository, waiting: Sequence[UnmatchedResult]) -> None:
    """Matches stored unmatched results again, as on arrival (same completion id; recorded_at = when
    first received), now that the session or roster they were missing may be there."""
    resolved_at = _now()
    for unmatched in waiting:
        claim = ClaimedReport(
            delivery_claimed=True,
            report_claimed=True,
            session=await repo.session_named_by(session_refs(unmatched.reported.session_ref)),
            on_roster=await repo.on_roster(unmatched.reported.fiscal_year, unmatched.reported.staff_id),
        )
        receipt = await _match_report(conn, repo, None, unmatched.reported, claim, unmatched.received_at)
        if receipt.status is ReceiptStatus.UNMATCHED:
            await repo.still_unmatched(unmatched.unmatched_id, receipt.reason or unmatched.reason.value)
            continue
        completion_id = (
            receipt.completion.completion_id
            if receipt.completion and receipt.status is ReceiptStatus.COMPLETED
            else None
        )
        await repo.resolve_unmatched(unmatched.unmatched_id, resolved_at, receipt.status.value, completion_id)
        await enqueue(
            conn,
            _rematched_event(
                c.CompletionRematched(
                    unmatched_id=unmatched.unmatched_id,
                    resolution=receipt.status.value,
                    completion_id=completion_id,
                    session_id=claim.session.session_id if claim.session else None,
                    staff_id=unmatched.reported.staff_id,
                    resolved_at=resolved_at,
                )
            ),
        )
        log.info("unmatched_resolved", unmatched_id=unmatched.unmatched_id, status=receipt.status.value)


def _rematched_event(payload: c.CompletionRematched) -> CloudEvent:
    # One resolution per unmatched report, however it came about: the event id is the report's.
    return new_event(
        payload,
        subject=payload.staff_id,
        event_id=deterministic_id("training.CompletionRematched", payload.unmatched_id),
        time=payload.resolved_at,
    )


@dataclass(frozen=True)
class OfficeResolution:
    unmatched_id: str
    resolution: str
    completion_id: str | None
    staff_id: str | None
    session_id: str | None
    resolved_at: datetime


async def match_by_hand(
    pool: asyncpg.Pool,
    unmatched_id: str,
    *,
    staff_id: str,
    session_ref: str | None,
    actor: str,
    window: FactWindow,
) -> OfficeResolution:
    """An office matches an unmatched report to the person (and session) it meant. The report then goes
    the way of an automatically matched one — the same completion id, SessionCompleted through the outbox,
    the same rules — and is marked resolved by hand. Refused (nothing recorded) when it is unknown,
    already resolved, or the correction is not plausible."""
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        unmatched = open_entry(await repo.lock_unmatched(unmatched_id), unmatched_id)
        corrected = matched_by_hand(unmatched, staff_id, session_ref)
        claim = ClaimedReport(
            delivery_claimed=True,
            report_claimed=True,
            session=await repo.session_named_by(session_refs(corrected.session_ref)),
            on_roster=await repo.on_roster(corrected.fiscal_year, corrected.staff_id),
        )
        check_hand_match(corrected, claim.session, claim.on_roster, window)
        assert claim.session is not None
        receipt = await _match_report(conn, repo, None, corrected, claim, unmatched.received_at)
        completion_id = (
            receipt.completion.completion_id
            if receipt.completion and receipt.status is ReceiptStatus.COMPLETED
            else None
        )
        resolution = OfficeResolution(
            unmatched_id, receipt.status.value, completion_id, corrected.staff_id, claim.session.session_id, _now()
        )
        await repo.resolve_by_office(
            unmatched_id, resolution.resolved_at, resolution.resolution, completion_id, actor=actor, reason=None,
            staff_id=corrected.staff_id, session_id=claim.session.session_id,
        )
        await enqueue(conn, _rematched_event(c.CompletionRematched(
            unmatched_id=unmatched_id, resolution=resolution.resolution, completion_id=completion_id,
            session_id=resolution.session_id, staff_id=resolution.staff_id, resolved_at=resolution.resolved_at,
            actor=actor,
        )))
    log.info("unmatched_matched_by_hand", unmatched_id=unmatched_id, status=resolution.resolution)
    return resolution


async def dismiss_unmatched(pool: asyncpg.Pool, unmatched_id: str, *, reason: str, actor: str) -> OfficeResolution:
    """An office takes an unmatched report off the queue with its reason (a test account, a course outside
    the programme): it makes no completion and is never matched again."""
    why = dismissal_reason(reason)
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        unmatched = open_entry(await repo.lock_unmatched(unmatched_id), unmatched_id)
        resolution = OfficeResolution(unmatched_id, DISMISSED, None, unmatched.reported.staff_id, None, _now())
        await repo.resolve_by_office(
            unmatched_id, resolution.resolved_at, DISMISSED, None, actor=actor, reason=why, staff_id=None,
            session_id=None,
        )
        await enqueue(conn, _rematched_event(c.CompletionRematched(
            unmatched_id=unmatched_id, resolution=DISMISSED, staff_id=unmatched.reported.staff_id,
            resolved_at=resolution.resolved_at, actor=actor, reason=why,
        )))
    log.info("unmatched_dismissed", unmatched_id=unmatched_id)
    return resolution


async def completions(
    pool: asyncpg.Pool, *, fiscal_year: int | None, session_id: str | None, staff_id: str | None, limit: int
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await TrainingRepository(conn).completions(
            fiscal_year=fiscal_year, session_id=session_id, staff_id=staff_id, limit=limit
        )


async def unmatched(pool: asyncpg.Pool, limit: int, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await TrainingRepository(conn).unmatched(limit, include_resolved=include_resolved)


# ---- attendance, backfill, waivers ------------------------------------------------------------


async def record_attendance(
    pool: asyncpg.Pool,
    session_id: str,
    staff_ids: Sequence[str],
    occurred_at: datetime | None,
    window: FactWindow | None = None,
) -> tuple[list[Completion], list[str]]:
    """Returns the new completions and the staff ids that were already recorded."""
    recorded_at = _now()
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        session = await repo.session(session_id, for_update=True)
        moment = attendance_time(session, occurred_at, recorded_at) if session else recorded_at
        already = await repo.attendees(session_id)
        requested = list(dict.fromkeys(staff_id.strip() for staff_id in staff_ids))
        not_on_roster = await repo.not_on_roster(fiscal_year_of(moment), requested)
        completions = take_attendance(
            session,
            requested,
            already_attended=already,
            not_on_roster=not_on_roster,
            occurred_at=moment,
            recorded_at=recorded_at,
            window=window,
        )
        recorded = []
        for completion in completions:
            if await repo.add_completion(completion):
                await enqueue(conn, session_completed_event(completion))
                recorded.append(completion)
        newly_present = {completion.staff_id for completion in recorded}
        return recorded, [staff_id for staff_id in requested if staff_id not in newly_present]


@dataclass(frozen=True)
class BackfillOutcome:
    line: int
    status: str  # recorded / duplicate / rejected
    completion_id: str | None = None
    code: str | None = None
    detail: str | None = None


async def import_completions(
    pool: asyncpg.Pool, rows: Sequence[BackfillRow | BackfillRowError], window: FactWindow | None = None
) -> list[BackfillOutcome]:
    recorded_at = _now()
    outcomes: list[BackfillOutcome] = []
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        sessions = await repo.sessions_by_id({row.session_id for row in rows if isinstance(row, BackfillRow)})
        for row in rows:
            if isinstance(row, BackfillRowError):
                outcomes.append(BackfillOutcome(row.line, "rejected", code=row.code, detail=row.detail))
                continue
            try:
                completion = import_completion(
                    sessions.get(row.session_id),
                    row.staff_id,
                    row.occurred_at,
                    recorded_at,
                    on_roster=await repo.on_roster(fiscal_year_of(row.occurred_at), row.staff_id),
                    success=row.success,
                    score=row.score,
                    window=window,
                )
            except TrainingRuleViolation as exc:
                outcomes.append(BackfillOutcome(row.line, "rejected", code=exc.code, detail=exc.detail))
                continue
            if await repo.add_completion(completion):
                await enqueue(conn, session_completed_event(completion))
                outcomes.append(BackfillOutcome(row.line, "recorded", completion.completion_id))
            else:
                outcomes.append(BackfillOutcome(row.line, "duplicate", completion.completion_id))
    return outcomes


async def waive(
    pool: asyncpg.Pool,
    role: Role,
    *,
    session_id: str,
    staff_id: str,
    actor: str,
    reason: str,
    fiscal_year: int | None,
    window: FactWindow | None = None,
) -> tuple[Waiver, bool]:
    """Returns the waiver and whether it is new (one waiver per person, session and fiscal year)."""
    async with pool.acquire() as conn, conn.transaction():
        repo = TrainingRepository(conn)
        session = await repo.session(session_id)
        waiver = waive_completion(
            role, session, staff_id, actor=actor, reason=reason, recorded_at=_now(), fiscal_year=fiscal_year,
            window=window,
        )
        if await repo.add_waiver(waiver):
            await enqueue(conn, completion_waived_event(waiver))
            return waiver, True
        existing = await repo.waiver(waiver.session_id, waiver.staff_id, waiver.fiscal_year)
        assert existing is not None
        return existing, False


# ---- known staff, from the nomination service's rosters ---------------------------------------


async def on_staff_imported(conn: asyncpg.Connection, event: CloudEvent, payload: c.StaffImported) -> None:
    repo = TrainingRepository(conn)
    listed = [entry.staff_id for entry in payload.staff]
    await repo.apply_roster(payload.fiscal_year, listed, payload.removed_staff_ids)
    waiting = await repo.lock_unresolved_of_staff(listed)
    await _rematch(conn, repo, [u for u in waiting if listed_on_roster(u, payload.fiscal_year, frozenset(listed))])
    log.info(
        "roster_applied",
        fiscal_year=payload.fiscal_year,
        added=len(payload.staff),
        removed=len(payload.removed_staff_ids),
    )


subscription = Subscription(
    purpose="rosters",
    events=[c.StaffImported],
    handler=on_staff_imported,
    description="Keeps the staff ids known per fiscal year, to recognise completions of unknown people.",
)
