"""Facts in, decisions out: each event is stored as a fact, then every person it concerns is re-decided.

Translate → lock → store the fact → load the person's full fact set → `decide` → `reconcile` with what
was already announced → save the announcement record and enqueue the difference in the outbox, all in
the consuming transaction (which also holds the inbox row), so a fact and its consequences commit
together or not at all. The consumer hands over its deliveries in batches: the facts of a batch are
stored and their people re-decided with a few set-based statements (`record_person_facts`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from dx_shared import contracts as c
from dx_shared.calendar import NaiveDateTimeError, to_jst
from dx_shared.consumer import EventFailed, Fresh, PermanentFailure, Subscription
from dx_shared.envelope import CloudEvent, deterministic_id, new_event
from dx_shared.logging import get_logger
from dx_shared.outbox import enqueue, enqueue_many
from progression.domain import (
    Completion,
    CurriculumRevision,
    Decision,
    DecisionEvent,
    FiscalYearClosing,
    Nomination,
    PersonStanding,
    Withdrawal,
    decide,
    reconcile,
)
from progression.repository import Announcement, NewPersonFact, PostgresProgressionStore, ProgressionStore

log = get_logger(__name__)


# ---- use cases ------------------------------------------------------------------------------------


async def record_person_fact(
    store: ProgressionStore, conn: asyncpg.Connection, staff_id: str, fact: Nomination | Withdrawal | Completion
) -> None:
    await record_person_facts(store, conn, [(NewPersonFact(staff_id, fact), contextlib.nullcontext)])


Scope = Callable[[], contextlib.AbstractContextManager[Any]]


async def record_person_facts(
    store: ProgressionStore, conn: asyncpg.Connection, facts: Sequence[tuple[NewPersonFact, Scope]]
) -> int:
    """Stores the facts of a batch and re-decides each person they concern once, from all their facts.

    A handful of statements whatever the batch holds: lock the people (in staff-id order), store the
    facts, load the people's facts and announcements, save what changed; then the outbox rows per person.
    Deciding a person once after several of their facts is deciding them after those facts arrived
    together, which P8 makes the same outcome. `Scope` makes current the event (its correlation id, its
    trace) whose consequences are being made: a person's announcements continue their last fact's trace.
    """
    people = sorted({new.staff_id for new, _ in facts})
    last_scope = {new.staff_id: scope for new, scope in facts}
    await store.lock_people(people)
    await store.add_person_facts([new for new, _ in facts])
    states = await store.states_of(people)
    announcements: list[tuple[Announcement, list[CloudEvent], Scope]] = []
    for staff_id in people:
        state = states[staff_id]
        with last_scope[staff_id]():
            result = reconcile(decide(state.facts), state.announced)
            if not result.decisions:
                continue
            events = [decision_event(decision) for decision in result.decisions]
        announcement = Announcement(
            staff_id,
            tuple(result.changed_years(state.announced)),
            tuple(result.decisions),
            {event.id: event.data for event in events},
        )
        announcements.append((announcement, events, last_scope[staff_id]))
    if not announcements:
        return 0
    await store.save_announcements([announcement for announcement, _, _ in announcements])
    for announcement, events, scope in announcements:
        with scope():
            await enqueue_many(conn, events)
            log.info(
                "decisions_announced",
                staff_id=announcement.staff_id,
                decisions=[f"{d.event.value}:{d.fiscal_year}:{d.stage}" for d in announcement.decisions],
            )
    return sum(len(events) for _, events, _ in announcements)


async def record_curriculum(store: ProgressionStore, conn: asyncpg.Connection, revision: CurriculumRevision) -> int:
    await store.lock_for_shared_facts()
    await store.add_curriculum(revision)
    return await redecide_people_nominated_in(store, conn, revision.fiscal_year)


async def close_fiscal_year(
    store: ProgressionStore,
    conn: asyncpg.Connection,
    fiscal_year: int,
    actor: str | None,
    *,
    early_close: bool = False,
    reason: str | None = None,
) -> tuple[FiscalYearClosing | None, int]:
    """P6: records the closing and announces FiscalYearClosed once, then re-decides everyone it concerns.

    Returns (None, 0) when the fiscal year was already closed.
    """
    await store.lock_for_shared_facts()
    closing = FiscalYearClosing(deterministic_id("FiscalYearClosed", fiscal_year), fiscal_year, await store.now())
    if not await store.add_closing(closing, actor):
        return None, 0
    payload = c.FiscalYearClosed(
        fiscal_year=fiscal_year, closed_at=closing.closed_at, actor=actor, early_close=early_close, reason=reason
    )
    await enqueue(conn, new_event(payload, event_id=closing.event_id))
    return closing, await redecide_people_nominated_in(store, conn, fiscal_year)


async def redecide_people_nominated_in(store: ProgressionStore, conn: asyncpg.Connection, fiscal_year: int) -> int:
    """Locks and re-decides, in staff-id order (so two such transactions cannot deadlock), each person
    with a nomination in `fiscal_year`: the only people whose decisions a curriculum or a closing of
    that year can change."""
    announced = 0
    for staff_id in await store.people_nominated_in(fiscal_year):
        await store.lock_person(staff_id)
        announced += await redecide(store, conn, staff_id)
    return announced


async def redecide(store: ProgressionStore, conn: asyncpg.Connection, staff_id: str) -> int:
    """Recomputes the person's standing from all their facts and announces only what changed."""
    before = await store.announced_for(staff_id)
    result = reconcile(decide(await store.facts_of(staff_id)), before)
    if not result.decisions:
        return 0
    events = [decision_event(decision) for decision in result.decisions]
    await store.save_announced(staff_id, result.changed_years(before))
    await store.log_decisions(result.decisions, {event.id: event.data for event in events})
    await enqueue_many(conn, events)
    log.info(
        "decisions_announced",
        staff_id=staff_id,
        decisions=[f"{d.event.value}:{d.fiscal_year}:{d.stage}" for d in result.decisions],
    )
    return len(events)


async def standing_of(store: ProgressionStore, staff_id: str) -> PersonStanding:
    return decide(await store.facts_of(staff_id))


def decision_event(decision: Decision) -> CloudEvent:
    common: dict[str, Any] = {
        "staff_id": decision.staff_id,
        "fiscal_year": decision.fiscal_year,
        "rule_version": decision.rule_version,
        "evidence": list(decision.evidence),
    }
    payload: c.EventPayload
    if decision.event is DecisionEvent.STAGE_ADVANCED:
        payload = c.StageAdvanced(
            **common, from_stage=decision.from_stage or 0, to_stage=decision.stage, corrects=decision.corrects
        )
    elif decision.event is DecisionEvent.STAGE_REPEATED:
        payload = c.StageRepeated(
            **common, stage=decision.stage, reason=decision.reason or "", corrects=decision.corrects
        )
    elif decision.event is DecisionEvent.STAGE_COMPLETED:
        assert decision.completed_at is not None
        payload = c.StageCompleted(
            **common, stage=decision.stage, completed_at=decision.completed_at, decision=decision.decision_id
        )
    elif decision.event is DecisionEvent.DECISION_RETRACTED:
        assert decision.corrects is not None
        payload = c.DecisionRetracted(
            **common,
            retracts=decision.corrects,
            reason=decision.reason or "",
            stage=decision.stage,
            awaiting_fiscal_year=decision.awaiting_fiscal_year,
        )
    else:
        payload = c.EnrollmentCancelled(
            **common, stage=decision.stage, reason=decision.reason or "", corrects=decision.corrects
        )
    return new_event(payload, subject=decision.staff_id, event_id=decision.event_id)


# ---- translation from the wire --------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    try:
        aware: datetime = to_jst(moment)
    except NaiveDateTimeError as exc:
        raise PermanentFailure(f"a time without a UTC offset cannot be placed in a fiscal year: {exc}") from exc
    return aware


def _nomination(event: CloudEvent, payload: c.TraineeNominated) -> Nomination:
    return Nomination(event.id, payload.nomination_id, payload.fiscal_year, payload.slot.value)


def _withdrawal(event: CloudEvent, payload: c.NominationWithdrawn) -> Withdrawal:
    return Withdrawal(event.id, payload.nomination_id, payload.fiscal_year, _aware(payload.withdrawn_at or event.time))


def _completion(event: CloudEvent, payload: c.SessionCompleted) -> Completion:
    return Completion(
        event.id,
        payload.session_id,
        payload.fiscal_year,
        _aware(payload.occurred_at),
        _aware(payload.recorded_at),
        waived=False,
    )


def _waiver(event: CloudEvent, payload: c.CompletionWaived) -> Completion:
    recorded_at = _aware(payload.recorded_at or event.time)
    return Completion(event.id, payload.session_id, payload.fiscal_year, recorded_at, recorded_at, waived=True)


def _curriculum(event: CloudEvent, payload: c.CurriculumPublished) -> CurriculumRevision:
    return CurriculumRevision(
        event.id,
        payload.fiscal_year,
        payload.stage,
        payload.revision,
        frozenset(payload.session_ids),
        published_at=_aware(event.time),
    )


def _person_fact(event: CloudEvent, payload: c.EventPayload) -> NewPersonFact | None:
    """The person's fact an event brings (raises `PermanentFailure` for one that can never be placed)."""
    if isinstance(payload, c.TraineeNominated):
        return NewPersonFact(payload.staff_id, _nomination(event, payload), payload.department_code)
    if isinstance(payload, c.NominationWithdrawn):
        return NewPersonFact(payload.staff_id, _withdrawal(event, payload))
    if isinstance(payload, c.SessionCompleted):
        return NewPersonFact(payload.staff_id, _completion(event, payload))
    if isinstance(payload, c.CompletionWaived):
        return NewPersonFact(payload.staff_id, _waiver(event, payload))
    return None


async def handle(conn: asyncpg.Connection, event: CloudEvent, payload: c.EventPayload) -> None:
    store = PostgresProgressionStore(conn)
    if isinstance(payload, c.CurriculumPublished):
        await record_curriculum(store, conn, _curriculum(event, payload))
        return
    fact = _person_fact(event, payload)
    if fact is not None:
        await record_person_facts(store, conn, [(fact, contextlib.nullcontext)])


async def handle_batch(conn: asyncpg.Connection, fresh: Sequence[Fresh]) -> None:
    """A batch of facts in the consumer's one transaction: person facts all together; a batch that also
    brings a curriculum (rare) takes the shared-facts lock exclusively first and goes event by event."""
    if any(isinstance(item.payload, c.CurriculumPublished) for item in fresh):
        await PostgresProgressionStore(conn).lock_for_shared_facts()
        for item in fresh:
            with item.scope():
                try:
                    await handle(conn, item.event, item.payload)
                except Exception as exc:
                    raise EventFailed(item, exc) from exc
        return
    facts: list[tuple[NewPersonFact, Scope]] = []
    for item in fresh:
        try:
            fact = _person_fact(item.event, item.payload)
        except PermanentFailure as exc:
            raise EventFailed(item, exc) from exc
        if fact is not None:
            facts.append((fact, item.scope))
    if facts:
        await record_person_facts(PostgresProgressionStore(conn), conn, facts)


subscription = Subscription(
    purpose="facts",
    events=[c.TraineeNominated, c.NominationWithdrawn, c.CurriculumPublished, c.SessionCompleted, c.CompletionWaived],
    handler=handle,
    batch_handler=handle_batch,
    description="The facts the stage rules decide from: nominations, withdrawals, curricula, completions, waivers.",
)
