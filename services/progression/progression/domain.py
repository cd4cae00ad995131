"""The 1→5 stage rules (POLICY.md §4 P1–P8) as pure functions of a person's facts.

`decide(facts)` reads every fact known about one person (their nominations, withdrawals,
completions and waivers, plus the curricula and fiscal-year closings that concern them) and returns
their standing, year by year. It keeps no state between calls, so the standing is a function of the
*set* of facts and cannot depend on the order or number of times they arrived (P8).

`reconcile(standing, emitted)` compares that standing with the decisions already announced and
returns only the difference, as decision events with deterministic ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from dx_shared.envelope import deterministic_id

RULE_VERSION = "policy-2024-02-29/1"
FIRST_STAGE = 1
LAST_STAGE = 5


class DecisionKind(StrEnum):
    ADVANCED = "advanced"  # entered a stage (0→1, or k→k+1): StageAdvanced
    REPEATED = "repeated"  # repeats a stage, or stays at 5 after finishing: StageRepeated
    PENDING = "pending"  # waits for the previous year's completion or closing (P6)


class RepeatReason(StrEnum):
    NOT_COMPLETED = "not_completed"  # 未修了: the previous year closed without completing the stage (P5)
    FINISHED = "finished"  # 修了: stage 5 completed, the person stays at 5 (P5)


class CancelReason(StrEnum):
    WITHDRAWN = "withdrawn"  # the nomination was withdrawn before any completion (P7): EnrollmentCancelled


class RetractReason(StrEnum):
    AWAITING_EARLIER_YEAR = "awaiting_earlier_year"  # a decided year became undecided again (P6): DecisionRetracted


# ---- facts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nomination:
    event_id: str
    nomination_id: str
    fiscal_year: int
    slot: str


@dataclass(frozen=True)
class Withdrawal:
    event_id: str
    nomination_id: str
    fiscal_year: int
    withdrawn_at: datetime


@dataclass(frozen=True)
class Completion:
    """A session met by the person in a fiscal year: a SessionCompleted, or a CompletionWaived."""

    event_id: str
    session_id: str
    fiscal_year: int
    occurred_at: datetime
    recorded_at: datetime
    waived: bool = False

    @property
    def met_at(self) -> datetime:
        """When the session counts as met: when it happened, or for a waiver when it was decided."""
        return self.recorded_at if self.waived else self.occurred_at


@dataclass(frozen=True)
class CurriculumRevision:
    """A published revision of a stage's curriculum; `published_at` (the event's own time) is when it
    came into force. A revision without a known time (recorded before times were kept) is in force from
    the start of the year, until a revision with a higher number is published."""

    event_id: str
    fiscal_year: int
    stage: int
    revision: int
    session_ids: frozenset[str]
    published_at: datetime | None = None


@dataclass(frozen=True)
class FiscalYearClosing:
    event_id: str
    fiscal_year: int
    closed_at: datetime


Fact = Nomination | Withdrawal | Completion | CurriculumRevision | FiscalYearClosing


@dataclass(frozen=True)
class PersonFacts:
    """Every fact that concerns one person; sets, so duplicates and order vanish."""

    staff_id: str
    nominations: frozenset[Nomination] = frozenset()
    withdrawals: frozenset[Withdrawal] = frozenset()
    completions: frozenset[Completion] = frozenset()
    curricula: frozenset[CurriculumRevision] = frozenset()
    closings: frozenset[FiscalYearClosing] = frozenset()

    @classmethod
    def of(cls, staff_id: str, facts: Iterable[Fact]) -> PersonFacts:
        person = cls(staff_id)
        for fact in facts:
            person = person.with_fact(fact)
        return person

    def with_fact(self, fact: Fact) -> PersonFacts:
        if isinstance(fact, Nomination):
            return replace(self, nominations=self.nominations | {fact})
        if isinstance(fact, Withdrawal):
            return replace(self, withdrawals=self.withdrawals | {fact})
        if isinstance(fact, Completion):
            return replace(self, completions=self.completions | {fact})
        if isinstance(fact, CurriculumRevision):
            return replace(self, curricula=self.curricula | {fact})
        return replace(self, closings=self.closings | {fact})


# ---- standing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCompletion:
    stage: int
    completed_at: datetime
    evidence: tuple[str, ...]  # the curriculum revision met, then the completions that met it


@dataclass(frozen=True)
class YearStanding:
    """One trainee-year: the stage decided for it, why, and whether it is final."""

    fiscal_year: int
    nomination_id: str
    kind: DecisionKind
    stage: int | None
    from_stage: int | None
    reason: RepeatReason | None
    evidence: tuple[str, ...]
    final: bool
    completion: StageCompletion | None = None
    deciding_fiscal_year: int | None = None  # the earlier year the decision depends on
    awaiting_fiscal_year: int | None = None  # for PENDING: the open year whose outcome is awaited

    @property
    def decided(self) -> bool:
        return self.stage is not None


@dataclass(frozen=True)
class LateFact:
    """A completion or withdrawal recorded after its fiscal year was closed: kept, changes nothing."""

    event_id: str
    kind: str  # "completion" | "withdrawal"
    fiscal_year: int
    recorded_at: datetime
    closed_at: datetime
    session_id: str | None = None


@dataclass(frozen=True)
class CancelledYear:
    """A fiscal year whose every nomination was withdrawn before any completion (P7)."""

    fiscal_year: int
    evidence: tuple[str, ...]  # the withdrawals


@dataclass(frozen=True)
class PersonStanding:
    staff_id: str
    years: tuple[YearStanding, ...] = ()
    cancelled_years: tuple[CancelledYear, ...] = ()
    late: tuple[LateFact, ...] = ()
    rule_version: str = RULE_VERSION

    @property
    def known(self) -> bool:
        return bool(self.years or self.cancelled_years)

    @property
    def current(self) -> YearStanding | None:
        return self.years[-1] if self.years else None

    def year(self, fiscal_year: int) -> YearStanding | None:
        return next((year for year in self.years if year.fiscal_year == fiscal_year), None)

    def cancelled(self, fiscal_year: int) -> CancelledYear | None:
        return next((year for year in self.cancelled_years if year.fiscal_year == fiscal_year), None)


def finished_by(standing: PersonStanding, fiscal_year: int | None) -> bool:
    """P5: 修了 — stage 5 completed in `fiscal_year` or any earlier year (any year when None).

    Finishing is for good: a person nominated again after finishing stays finished in every later year.
    """
    return any(
        year.stage == LAST_STAGE
        and year.completion is not None
        and (fiscal_year is None or year.fiscal_year <= fiscal_year)
        for year in standing.years
    )


def decide(facts: PersonFacts) -> PersonStanding:
    """The person's standing from the full set of their facts (P1–P7), never from earlier results."""
    closings = _closings_by_year(facts.closings)
    counted = frozenset(c for c in facts.completions if not _is_late_completion(c, closings))
    nominations = _trainee_year_nominations(facts, closings, counted)
    years: list[YearStanding] = []
    for fiscal_year in sorted(nominations):
        previous = years[-1] if years else None
        year = _decide_year(nominations[fiscal_year], previous, closings)
        if year.stage is not None:
            year = replace(year, completion=_stage_completion(facts, year.stage, fiscal_year, counted))
        earlier_closed = all(y.fiscal_year in closings for y in years)
        years.append(replace(year, final=year.decided and fiscal_year in closings and earlier_closed))
    nominated_years = {n.fiscal_year for n in facts.nominations}
    cancelled = [
        CancelledYear(fy, tuple(sorted(w.event_id for w in facts.withdrawals if w.fiscal_year == fy)))
        for fy in sorted(nominated_years - set(nominations))
    ]
    return PersonStanding(
        staff_id=facts.staff_id,
        years=tuple(years),
        cancelled_years=tuple(cancelled),
        late=_late_facts(facts, closings),
    )


def _decide_year(
    nomination: Nomination, previous: YearStanding | None, closings: Mapping[int, FiscalYearClosing]
) -> YearStanding:
    fiscal_year = nomination.fiscal_year
    base = YearStanding(
        fiscal_year=fiscal_year,
        nomination_id=nomination.nomination_id,
        kind=DecisionKind.PENDING,
        stage=None,
        from_stage=None,
        reason=None,
        evidence=(nomination.event_id,),
        final=False,
    )
    if previous is None:  # P1: a new DX promoter enters stage 1 in the year of the nomination
        return replace(base, kind=DecisionKind.ADVANCED, stage=FIRST_STAGE, from_stage=0)
    decided_by = replace(base, deciding_fiscal_year=previous.fiscal_year)
    if previous.stage is None:
        return replace(decided_by, awaiting_fiscal_year=previous.awaiting_fiscal_year)
    stage = previous.stage
    if previous.completion is not None:
        evidence = (nomination.event_id, *previous.completion.evidence)
        if stage == LAST_STAGE:  # P5: finished (修了), stays at 5
            return replace(
                decided_by,
                kind=DecisionKind.REPEATED,
                stage=stage,
                from_stage=stage,
                reason=RepeatReason.FINISHED,
                evidence=evidence,
            )
        # P4: one stage per year, from the stage of the previous enrolled year, never more
        return replace(decided_by, kind=DecisionKind.ADVANCED, stage=stage + 1, from_stage=stage, evidence=evidence)
    closing = closings.get(previous.fiscal_year)
    if closing is not None:  # P5 + P6: the year closed without the stage completed
        return replace(
            decided_by,
            kind=DecisionKind.REPEATED,
            stage=stage,
            from_stage=stage,
            reason=RepeatReason.NOT_COMPLETED,
            evidence=(nomination.event_id, closing.event_id),
        )
    return replace(decided_by, awaiting_fiscal_year=previous.fiscal_year)  # P6: provisional, waits


def _trainee_year_nominations(
    facts: PersonFacts, closings: Mapping[int, FiscalYearClosing], counted: frozenset[Completion]
) -> dict[int, Nomination]:
    """The nomination that makes each fiscal year a trainee-year, if any.

    P7: a withdrawal cancels the trainee-year only while the year has no completions of its
    curricula' sessions; a withdrawal recorded after the year was closed changes nothing.
    """
    withdrawn = {w.nomination_id for w in facts.withdrawals if not _is_late(w.fiscal_year, w.withdrawn_at, closings)}
    chosen: dict[int, Nomination] = {}
    for fiscal_year in {n.fiscal_year for n in facts.nominations}:
        has_completions = _has_curriculum_completions(facts.curricula, counted, fiscal_year)
        standing = [
            n
            for n in facts.nominations
            if n.fiscal_year == fiscal_year and (n.nomination_id not in withdrawn or has_completions)
        ]
        if standing:
            chosen[fiscal_year] = min(
                standing, key=lambda n: (n.nomination_id in withdrawn, n.nomination_id, n.event_id)
            )
    return chosen


def _has_curriculum_completions(
    curricula: frozenset[CurriculumRevision], counted: frozenset[Completion], fiscal_year: int
) -> bool:
    sessions = {s for rev in curricula if rev.fiscal_year == fiscal_year for s in rev.session_ids}
    return any(c.fiscal_year == fiscal_year and c.session_id in sessions for c in counted)


def _stage_completion(
    facts: PersonFacts, stage: int, fiscal_year: int, counted: frozenset[Completion]
) -> StageCompletion | None:
    """P3: completed when every required session of the curriculum *in force* is met within the year.

    The stage is completed at the first moment t at which every session of the revision in force at t
    has been met by a completion or waiver of the year (met_at ≤ t). The moments considered are when a
    session was met and when a revision came into force, all by the facts' own times, so the answer
    is the same whatever order the revisions and completions arrive in (P8). Once completed, a later
    revision cannot take the completion away: a revision published after t is not in force at t.
    """
    revisions = sorted(
        (revision for revision in facts.curricula if revision.fiscal_year == fiscal_year and revision.stage == stage),
        key=lambda revision: (revision.revision, revision.event_id),
    )
    if not revisions:
        return None
    in_year = sorted((c for c in counted if c.fiscal_year == fiscal_year), key=lambda c: (c.met_at, c.event_id))
    moments = sorted(
        {c.met_at for c in in_year} | {r.published_at for r in revisions[1:] if r.published_at is not None}
    )
    for moment in moments:
        revision = revision_in_force(revisions, moment)
        if revision is None or not revision.session_ids:
            continue
        met_by_then = [c for c in in_year if c.met_at <= moment]
        met = [_first_met(met_by_then, session_id) for session_id in sorted(revision.session_ids)]
        met_all = [c for c in met if c is not None]
        if len(met_all) == len(met):
            return StageCompletion(
                stage=stage,
                completed_at=moment,
                evidence=(revision.event_id, *sorted({c.event_id for c in met_all})),
            )
    return None


def revision_in_force(revisions: Iterable[CurriculumRevision], moment: datetime) -> CurriculumRevision | None:
    """The revision with the highest number among those in force at `moment`.

    The first revision (the lowest number) is the stage's curriculum from the start of the year — before
    it there was none to judge against, so sessions met before it was published count towards it; each
    later revision is in force from when it was published.
    """
    ordered = sorted(revisions, key=lambda r: (r.revision, r.event_id))
    if not ordered:
        return None
    first = ordered[0]
    in_force = [r for r in ordered if r is first or r.published_at is None or r.published_at <= moment]
    return in_force[-1]


def _first_met(completions: Iterable[Completion], session_id: str) -> Completion | None:
    matching = [c for c in completions if c.session_id == session_id]
    return min(matching, key=lambda c: (c.met_at, c.event_id)) if matching else None


def _closings_by_year(closings: Iterable[FiscalYearClosing]) -> dict[int, FiscalYearClosing]:
    by_year: dict[int, FiscalYearClosing] = {}
    for closing in sorted(closings, key=lambda c: (c.closed_at, c.event_id)):
        by_year.setdefault(closing.fiscal_year, closing)
    return by_year


def _is_late(fiscal_year: int, recorded_at: datetime, closings: Mapping[int, FiscalYearClosing]) -> bool:
    """P6, judged by timestamps and not by arrival order, which is what keeps P8 true."""
    closing = closings.get(fiscal_year)
    return closing is not None and recorded_at > closing.closed_at


def _is_late_completion(completion: Completion, closings: Mapping[int, FiscalYearClosing]) -> bool:
    return _is_late(completion.fiscal_year, completion.recorded_at, closings)


def _late_facts(facts: PersonFacts, closings: Mapping[int, FiscalYearClosing]) -> tuple[LateFact, ...]:
    late = [
        LateFact(
            c.event_id, "completion", c.fiscal_year, c.recorded_at, closings[c.fiscal_year].closed_at, c.session_id
        )
        for c in facts.completions
        if _is_late_completion(c, closings)
    ] + [
        LateFact(w.event_id, "withdrawal", w.fiscal_year, w.withdrawn_at, closings[w.fiscal_year].closed_at)
        for w in facts.withdrawals
        if _is_late(w.fiscal_year, w.withdrawn_at, closings)
    ]
    return tuple(sorted(late, key=lambda f: (f.fiscal_year, f.recorded_at, f.event_id)))


# ---- announced decisions ------------------------------------------------------------------------


class DecisionEvent(StrEnum):
    STAGE_ADVANCED = "StageAdvanced"
    STAGE_REPEATED = "StageRepeated"
    STAGE_COMPLETED = "StageCompleted"
    ENROLLMENT_CANCELLED = "EnrollmentCancelled"  # undone by a withdrawal (P7)
    DECISION_RETRACTED = "DecisionRetracted"  # a provisional decision no longer holds (P6)


_STAGE_EVENT = {
    DecisionKind.ADVANCED: DecisionEvent.STAGE_ADVANCED,
    DecisionKind.REPEATED: DecisionEvent.STAGE_REPEATED,
}


@dataclass(frozen=True)
class EmittedYear:
    """The last decision announced for one (person, fiscal year), as the service stores it.

    `sequence` counts the decisions announced for the year; it is part of every event id, so a
    correction never reuses an id and a recomputation of the same step always produces the same id.
    `completion_event_id` is the StageCompleted announced for *this* decision, if any.
    """

    fiscal_year: int
    event_id: str
    event: DecisionEvent  # StageAdvanced | StageRepeated | EnrollmentCancelled | DecisionRetracted
    stage: int
    from_stage: int | None
    reason: str | None
    sequence: int
    completion_event_id: str | None = None
    completed_at: datetime | None = None  # what that StageCompleted said (None: not known, older record)

    @property
    def live(self) -> bool:
        return self.event not in (DecisionEvent.ENROLLMENT_CANCELLED, DecisionEvent.DECISION_RETRACTED)


@dataclass(frozen=True)
class Decision:
    """A decision event to announce."""

    event_id: str
    event: DecisionEvent
    staff_id: str
    fiscal_year: int
    stage: int
    evidence: tuple[str, ...]
    from_stage: int | None = None
    reason: str | None = None
    corrects: str | None = None
    completed_at: datetime | None = None
    decision_id: str | None = None  # for StageCompleted: the stage decision it completes
    awaiting_fiscal_year: int | None = None  # for DecisionRetracted: the earlier year awaited
    rule_version: str = RULE_VERSION


@dataclass(frozen=True)
class Reconciliation:
    decisions: tuple[Decision, ...] = ()
    emitted: Mapping[int, EmittedYear] = field(default_factory=dict)

    def changed_years(self, before: Mapping[int, EmittedYear]) -> list[EmittedYear]:
        return [year for fy, year in sorted(self.emitted.items()) if before.get(fy) != year]


def reconcile(standing: PersonStanding, emitted: Mapping[int, EmittedYear]) -> Reconciliation:
    """The decisions to announce so that what was announced matches `standing`, and the new record.

    Only differences are announced: a year that gets a stage or whose stage changes (correcting the
    previous announcement), a year that becomes completed, a year that loses its decision.
    """
    decisions: list[Decision] = []
    after = dict(emitted)
    fiscal_years = sorted({y.fiscal_year for y in standing.years if y.decided} | set(emitted))
    for fiscal_year in fiscal_years:
        year = standing.year(fiscal_year)
        announced = emitted.get(fiscal_year)
        if year is not None and year.decided:
            year_decisions, after[fiscal_year] = _announce_year(standing.staff_id, year, announced)
            decisions.extend(year_decisions)
        elif announced is not None and announced.live:
            if year is not None:  # still a trainee-year, undecided again: a retraction, not a withdrawal
                undone, after[fiscal_year] = _retract(standing.staff_id, announced, year)
            else:
                withdrawn = standing.cancelled(fiscal_year)
                evidence = withdrawn.evidence if withdrawn else ()
                undone, after[fiscal_year] = _cancel(standing.staff_id, announced, CancelReason.WITHDRAWN, evidence)
            decisions.append(undone)
    return Reconciliation(tuple(decisions), after)


def live_decisions(emitted: Mapping[int, EmittedYear]) -> frozenset[tuple[object, ...]]:
    """What stands announced, without ids: the same for every order of the same facts (P8)."""
    standing: set[tuple[object, ...]] = set()
    for year in emitted.values():
        if year.live:
            standing.add((year.fiscal_year, year.event.value, year.stage, year.from_stage, year.reason))
            if year.completion_event_id is not None:
                standing.add((year.fiscal_year, DecisionEvent.STAGE_COMPLETED.value, year.stage, year.completed_at))
    return frozenset(standing)


def expected_decisions(standing: PersonStanding) -> frozenset[tuple[object, ...]]:
    """The announced decisions that `standing` calls for, in the shape of `live_decisions`."""
    expected: set[tuple[object, ...]] = set()
    for year in standing.years:
        if year.stage is None:
            continue
        event = _STAGE_EVENT[year.kind]
        reason = year.reason.value if year.reason else None
        expected.add((year.fiscal_year, event.value, year.stage, year.from_stage, reason))
        if year.completion is not None:
            expected.add(
                (year.fiscal_year, DecisionEvent.STAGE_COMPLETED.value, year.stage, year.completion.completed_at)
            )
    return frozenset(expected)


def _announce_year(
    staff_id: str, year: YearStanding, announced: EmittedYear | None
) -> tuple[list[Decision], EmittedYear]:
    assert year.stage is not None
    event = _STAGE_EVENT[year.kind]
    reason = year.reason.value if year.reason else None
    same_decision = (
        announced is not None
        and announced.live
        and (announced.event, announced.stage, announced.from_stage, announced.reason)
        == (event, year.stage, year.from_stage, reason)
    )
    # A completion never announced for this decision, or announced but no longer true (a completion
    # that turned out late once the closing was known): the decision is re-announced to withdraw it.
    completion_withdrawn = (
        same_decision
        and year.completion is None
        and (announced is not None and announced.completion_event_id is not None)
    )
    # A completion announced with a moment that no longer holds (a revision or an earlier waiver became
    # known later): re-announced too, so what stands announced is the same for every arrival order (P8).
    completion_moved = (
        same_decision
        and year.completion is not None
        and announced is not None
        and announced.completion_event_id is not None
        and announced.completed_at is not None
        and announced.completed_at != year.completion.completed_at
    )
    decisions: list[Decision] = []
    current = announced
    if not same_decision or completion_withdrawn or completion_moved:
        sequence = announced.sequence + 1 if announced else 0
        event_id = deterministic_id(staff_id, year.fiscal_year, event.value, year.stage, sequence)
        decisions.append(
            Decision(
                event_id=event_id,
                event=event,
                staff_id=staff_id,
                fiscal_year=year.fiscal_year,
                stage=year.stage,
                from_stage=year.from_stage,
                reason=reason,
                evidence=year.evidence,
                corrects=announced.event_id if announced else None,
            )
        )
        current = EmittedYear(year.fiscal_year, event_id, event, year.stage, year.from_stage, reason, sequence)
    assert current is not None
    if year.completion is not None and current.completion_event_id is None:
        completion_id = deterministic_id(
            staff_id, year.fiscal_year, DecisionEvent.STAGE_COMPLETED.value, year.stage, current.sequence
        )
        decisions.append(
            Decision(
                event_id=completion_id,
                event=DecisionEvent.STAGE_COMPLETED,
                staff_id=staff_id,
                fiscal_year=year.fiscal_year,
                stage=year.stage,
                evidence=year.completion.evidence,
                completed_at=year.completion.completed_at,
                decision_id=current.event_id,
            )
        )
        current = replace(current, completion_event_id=completion_id, completed_at=year.completion.completed_at)
    return decisions, current


def _cancel(
    staff_id: str, announced: EmittedYear, reason: CancelReason, evidence: tuple[str, ...]
) -> tuple[Decision, EmittedYear]:
    sequence = announced.sequence + 1
    event = DecisionEvent.ENROLLMENT_CANCELLED
    event_id = deterministic_id(staff_id, announced.fiscal_year, event.value, announced.stage, sequence)
    decision = Decision(
        event_id=event_id,
        event=event,
        staff_id=staff_id,
        fiscal_year=announced.fiscal_year,
        stage=announced.stage,
        evidence=evidence,
        reason=reason.value,
        corrects=announced.event_id,
    )
    return decision, EmittedYear(announced.fiscal_year, event_id, event, announced.stage, None, reason.value, sequence)


def _retract(staff_id: str, announced: EmittedYear, year: YearStanding) -> tuple[Decision, EmittedYear]:
    sequence = announced.sequence + 1
    event = DecisionEvent.DECISION_RETRACTED
    reason = RetractReason.AWAITING_EARLIER_YEAR.value
    event_id = deterministic_id(staff_id, announced.fiscal_year, event.value, announced.stage, sequence)
    decision = Decision(
        event_id=event_id,
        event=event,
        staff_id=staff_id,
        fiscal_year=announced.fiscal_year,
        stage=announced.stage,
        evidence=year.evidence,
        reason=reason,
        corrects=announced.event_id,
        awaiting_fiscal_year=year.awaiting_fiscal_year,
    )
    return decision, EmittedYear(announced.fiscal_year, event_id, event, announced.stage, None, reason, sequence)


def pending_on(standing: PersonStanding, fiscal_year: int) -> tuple[YearStanding, ...]:
    """The person's trainee-years without a stage yet (P6) that FY `fiscal_year` concerns: a year of
    FY `fiscal_year` itself, or a later one that waits for FY `fiscal_year`'s outcome (closing it decides
    those: the trainee repeats unless the completion arrives first)."""
    return tuple(
        year for year in standing.years
        if year.kind is DecisionKind.PENDING
        and (year.fiscal_year == fiscal_year or year.awaiting_fiscal_year == fiscal_year)
    )


def provisional_in(standing: PersonStanding, fiscal_year: int) -> tuple[YearStanding, ...]:
    """The person's FY `fiscal_year` trainee-year when it has a stage that is not final yet."""
    return tuple(year for year in standing.years if year.fiscal_year == fiscal_year and year.decided and not year.final)
