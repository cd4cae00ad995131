"""The rules of training (POLICY.md §3 and P2): sessions, curricula, completions, attendance, waivers.

Pure: values in, decisions out, named errors with a rule code and messages in Japanese and English.

Curriculum changes during the year
----------------------------------
A curriculum (the required sessions of one stage in one fiscal year, P2) may be changed after the year
has started. Each change is published as a new *revision* (`CurriculumPublished` with revision + 1);
publishing the same set of sessions again is not a change and publishes nothing. Earlier revisions are
kept. A trainee **completed** the stage (P3) if they met every required session of **any** published
revision of that fiscal year's curriculum (`stage_completed_under_any_revision`): a change never takes a
completion away from someone who already met the curriculum they were training against, and a trainee
who meets the new curriculum completes too. The progression service applies this rule; this service only
publishes the revisions.

Completions are identified by the source's own ids (the xAPI statement id, the webhook delivery id, the
attendance of a person at a session, an imported row), so a retry or replay is recognised, and a person
completes a session at most once per fiscal year — the set of (session, person, fiscal year) completions
does not depend on the order in which reports arrive (P8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from dx_shared.calendar import (
    accepted_fiscal_years,
    fiscal_year_label_ja,
    fiscal_year_of,
    occurs_in_future,
)
from dx_shared.contracts import STAGES, Audience, CompletionSource, Method, MoveOn
from dx_shared.envelope import deterministic_id
from dx_shared.roles import OFFICES, Role

ATTENDANCE_METHODS = frozenset({Method.CLASSROOM, Method.HANDS_ON})


# ---- errors -----------------------------------------------------------------------------------


class TrainingRuleViolation(Exception):
    """A refusal naming the rule it applies; nothing is recorded when one is raised."""

    code: ClassVar[str] = "TRAINING_RULE"
    title_en: ClassVar[str] = "A training rule refused the request"
    title_ja: ClassVar[str] = "研修のルールにより受け付けられません"

    def __init__(self, detail: str, **facts: object) -> None:
        super().__init__(f"{self.code}: {detail}")
        self.detail = detail
        self.facts = facts


class UnknownSession(TrainingRuleViolation):
    code = "UNKNOWN_SESSION"
    title_en = "No such session"
    title_ja = "該当する研修がありません"


class UnknownStaff(TrainingRuleViolation):
    code = "UNKNOWN_STAFF"
    title_en = "Not on the fiscal year's roster"
    title_ja = "当該年度の職員名簿に登録されていません"


class CapacityExceeded(TrainingRuleViolation):
    code = "CAPACITY_EXCEEDED"
    title_en = "The session is full"
    title_ja = "研修の定員を超えています"


class AttendanceNotApplicable(TrainingRuleViolation):
    code = "ATTENDANCE_NOT_APPLICABLE"
    title_en = "Attendance is taken only for classroom and hands-on sessions"
    title_ja = "出席の記録は集合研修・ハンズオンのみ対象です"


class InvalidSession(TrainingRuleViolation):
    code = "INVALID_SESSION"
    title_en = "The session is not consistent"
    title_ja = "研修の内容に不整合があります"


class SessionAlreadyExists(TrainingRuleViolation):
    code = "SESSION_EXISTS"
    title_en = "A different session with this id already exists"
    title_ja = "同じIDで内容の異なる研修が既に登録されています"


class EmptyCurriculum(TrainingRuleViolation):
    code = "EMPTY_CURRICULUM"
    title_en = "A curriculum needs at least one required session"
    title_ja = "カリキュラムには必修の研修が1つ以上必要です"


class CurriculumSessionMismatch(TrainingRuleViolation):
    code = "CURRICULUM_SESSION_MISMATCH"
    title_en = "A curriculum may require only DX promoter sessions of its own fiscal year and stage"
    title_ja = "カリキュラムには同じ年度・同じステージのDX推進員向け研修のみ指定できます"


class InvalidStage(TrainingRuleViolation):
    code = "INVALID_STAGE"
    title_en = "Stages are 1 to 5"
    title_ja = "ステージは1から5です"


class WaiverNotPermitted(TrainingRuleViolation):
    code = "WAIVER_NOT_PERMITTED"
    title_en = "Only the DX promotion office and the HR office may waive a completion"
    title_ja = "修了の免除はDX推進担当部門・人財育成担当部門のみ行えます"


class ActorRequired(TrainingRuleViolation):
    code = "ACTOR_REQUIRED"
    title_en = "A waiver must name who decided it"
    title_ja = "免除には決定者の記録が必要です"


class ReasonRequired(TrainingRuleViolation):
    code = "REASON_REQUIRED"
    title_en = "A waiver must give its reason"
    title_ja = "免除には理由の記録が必要です"


class OccurredInFuture(TrainingRuleViolation):
    code = "OCCURRED_IN_FUTURE"
    title_en = "The time it happened is in the future; nothing was recorded"
    title_ja = "実施日時が未来の日時のため、記録していません"


class FiscalYearOutOfRange(TrainingRuleViolation):
    code = "FISCAL_YEAR_OUT_OF_RANGE"
    title_en = "The fiscal year is outside the years the system accepts"
    title_ja = "受け付けられる範囲外の年度です"


class UnknownUnmatched(TrainingRuleViolation):
    code = "UNKNOWN_UNMATCHED"
    title_en = "No such unmatched report"
    title_ja = "該当する照合待ちの報告がありません"


class UnmatchedAlreadyResolved(TrainingRuleViolation):
    code = "UNMATCHED_ALREADY_RESOLVED"
    title_en = "This report has already been matched or dismissed; nothing was changed"
    title_ja = "この報告は既に照合済みまたは対象外として処理されています（変更していません）"


class DismissalReasonRequired(TrainingRuleViolation):
    code = "REASON_REQUIRED"
    title_en = "Dismissing a report must give its reason"
    title_ja = "対象外として処理するには理由の記録が必要です"


# ---- what could have happened by now -----------------------------------------------------------


DEFAULT_SKEW = timedelta(minutes=5)
DEFAULT_FIRST_FISCAL_YEAR = 2019


@dataclass(frozen=True)
class FactWindow:
    """What can have happened by `now`: nothing later than now + `skew` (clocks differ a little), nothing
    in a fiscal year before `first_fiscal_year`."""

    now: datetime
    skew: timedelta = DEFAULT_SKEW
    first_fiscal_year: int = DEFAULT_FIRST_FISCAL_YEAR

    def check_occurred(self, occurred_at: datetime) -> None:
        """Refuses a completion or attendance dated in the future or before the first fiscal year."""
        if occurs_in_future(occurred_at, self.now, self.skew):
            raise OccurredInFuture(
                f"occurred_at {occurred_at.isoformat()} is later than now ({self.now.isoformat()})",
                occurred_at=occurred_at.isoformat(),
            )
        self.check_fiscal_year(fiscal_year_of(occurred_at))

    def check_fiscal_year(self, fiscal_year: int) -> None:
        accepted = accepted_fiscal_years(self.first_fiscal_year, self.now)
        if fiscal_year < accepted.start or fiscal_year > accepted.stop - 1:
            raise FiscalYearOutOfRange(
                f"FY{fiscal_year} ({fiscal_year_label_ja(fiscal_year)}) is outside FY{accepted.start}-FY{accepted.stop - 1}",
                fiscal_year=fiscal_year,
            )

    def check_waiver_year(self, fiscal_year: int) -> None:
        """A waiver counts in a fiscal year: one that has not begun yet (by now + skew) is in the future."""
        self.check_fiscal_year(fiscal_year)
        if fiscal_year > fiscal_year_of(self.now + self.skew):
            raise OccurredInFuture(
                f"FY{fiscal_year} has not begun yet ({self.now.isoformat()})", fiscal_year=fiscal_year
            )


# ---- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A training occasion of one fiscal year, delivered by one method to one audience."""

    session_id: str
    fiscal_year: int
    method: Method
    audience: Audience
    title: str
    move_on: MoveOn = MoveOn.COMPLETED
    stage: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    capacity: int | None = None
    xapi_activity_id: str | None = None

    @property
    def takes_attendance(self) -> bool:
        return self.method in ATTENDANCE_METHODS


def schedule_session(session: Session) -> Session:
    """Checks a new session; returns it unchanged when it is consistent."""
    if not session.session_id.strip():
        raise InvalidSession("session_id must not be blank")
    if not session.title.strip():
        raise InvalidSession("title must not be blank")
    if session.audience is Audience.PROMOTER and session.stage not in STAGES:
        raise InvalidSession("a DX promoter session needs its stage (1-5)", stage=session.stage)
    if session.audience is not Audience.PROMOTER and session.stage is not None:
        raise InvalidSession("only DX promoter sessions have a stage", audience=session.audience.value)
    if session.capacity is not None and session.capacity < 1:
        raise InvalidSession("capacity must be at least 1", capacity=session.capacity)
    if session.starts_at and session.ends_at and session.ends_at < session.starts_at:
        raise InvalidSession("ends_at is before starts_at")
    if session.starts_at and fiscal_year_of(session.starts_at) != session.fiscal_year:
        raise InvalidSession(
            f"starts_at falls in FY{fiscal_year_of(session.starts_at)}, not FY{session.fiscal_year}",
            fiscal_year=session.fiscal_year,
        )
    return session


def reschedule_is_repeat(existing: Session, requested: Session) -> bool:
    """Scheduling the same session again is a harmless repeat; a different one under its id is refused."""
    if existing == requested:
        return True
    raise SessionAlreadyExists(f"session {existing.session_id} already exists with other details")


# ---- the results a learner reports (cmi5 move_on) ---------------------------------------------


class Verb(StrEnum):
    """The xAPI verbs that can complete a session; everything else is recorded and ignored."""

    COMPLETED = "completed"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What a learner has shown for a session so far: completed it, passed it."""

    completed: bool = False
    passed: bool = False

    def merge(self, other: Outcome) -> Outcome:
        return Outcome(self.completed or other.completed, self.passed or other.passed)


def outcome_of(verb: Verb | None, *, completion: bool | None = None, success: bool | None = None) -> Outcome:
    """cmi5 reading of a statement: `completed` or result.completion shows completion; `passed` or
    result.success shows a pass, unless the verb is `failed` or success is explicitly false."""
    completed = verb is Verb.COMPLETED or completion is True
    passed = (verb is Verb.PASSED or success is True) and verb is not Verb.FAILED and success is not False
    return Outcome(completed=completed, passed=passed)


def meets_move_on(move_on: MoveOn, outcome: Outcome) -> bool:
    if move_on is MoveOn.COMPLETED:
        return outcome.completed
    if move_on is MoveOn.PASSED:
        return outcome.passed
    if move_on is MoveOn.COMPLETED_AND_PASSED:
        return outcome.completed and outcome.passed
    return outcome.completed or outcome.passed


EVERY_OUTCOME = tuple(Outcome(completed, passed) for completed in (False, True) for passed in (False, True))


def outcomes_meeting(move_on: MoveOn) -> tuple[Outcome, ...]:
    """Every accumulated outcome that meets `move_on`: lets the store test the outcome it holds under its
    row lock in the same statement that adds to it, with the rule still decided here."""
    return tuple(outcome for outcome in EVERY_OUTCOME if meets_move_on(move_on, outcome))


_LAST_SEGMENT = re.compile(r"[/#:?=]")


def session_refs(reference: str) -> tuple[str, ...]:
    """The session ids an activity IRI may name: itself (a session id or xAPI activity id) and its last
    path segment (`https://lms.example/activities/S-001` names session `S-001`)."""
    trimmed = reference.strip().rstrip("/")
    last = _LAST_SEGMENT.split(trimmed)[-1]
    return (trimmed,) if not last or last == trimmed else (trimmed, last)


@dataclass(frozen=True)
class ReportedResult:
    """A learning result reported from outside (e-learning webhook, xAPI statement), not yet matched."""

    source: CompletionSource
    source_key: str
    session_ref: str
    staff_id: str
    occurred_at: datetime
    outcome: Outcome
    success: bool | None = None
    score: float | None = None

    @property
    def fiscal_year(self) -> int:
        return fiscal_year_of(self.occurred_at)

    @property
    def completion_id(self) -> str:
        return completion_id_for(self.source_key)


def completion_id_for(source_key: str) -> str:
    return deterministic_id("training.completion", source_key)


class UnmatchedReason(StrEnum):
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    UNKNOWN_STAFF = "UNKNOWN_STAFF"


def person_is_known(on_roster: bool | None) -> bool:
    """`None` means no roster has been imported for that fiscal year yet: rosters may arrive after the
    completions they cover (P6), so nobody is treated as unknown before then."""
    return on_roster is not False


def unmatched_reason(session: Session | None, on_roster: bool | None) -> UnmatchedReason | None:
    if session is None:
        return UnmatchedReason.UNKNOWN_SESSION
    if not person_is_known(on_roster):
        return UnmatchedReason.UNKNOWN_STAFF
    return None


def unmatched_id_for(source_key: str) -> str:
    return deterministic_id("training.unmatched", source_key)


@dataclass(frozen=True)
class UnmatchedResult:
    """A reported result kept as unmatched, waiting for the session or roster it names (P6: facts arrive
    late); matched later exactly as on arrival, with `received_at` as when it was recorded."""

    unmatched_id: str
    reason: UnmatchedReason
    reported: ReportedResult
    received_at: datetime


def names_session(unmatched: UnmatchedResult, session: Session) -> bool:
    """Whether a newly scheduled session is one the unmatched result may name."""
    refs = session_refs(unmatched.reported.session_ref)
    return session.session_id in refs or (session.xapi_activity_id is not None and session.xapi_activity_id in refs)


def listed_on_roster(unmatched: UnmatchedResult, fiscal_year: int, staff_ids: frozenset[str]) -> bool:
    """Whether a roster import of `fiscal_year` lists the person an unmatched result names, in the fiscal
    year the result happened in."""
    return unmatched.reported.fiscal_year == fiscal_year and unmatched.reported.staff_id in staff_ids


# ---- the offices' queue of unmatched reports ------------------------------------------------------

MATCHED_BY_HAND = "by_hand"
DISMISSED = "dismissed"


@dataclass(frozen=True)
class UnmatchedEntry:
    """An unmatched report as the offices' queue holds it: still open, or how it was resolved."""

    result: UnmatchedResult
    resolution: str | None

    @property
    def is_open(self) -> bool:
        return self.resolution is None


def open_entry(entry: UnmatchedEntry | None, unmatched_id: str) -> UnmatchedResult:
    """The report an office may still match or dismiss; a second attempt is refused (409), never redone."""
    if entry is None:
        raise UnknownUnmatched(f"no unmatched report {unmatched_id}", unmatched_id=unmatched_id)
    if not entry.is_open:
        raise UnmatchedAlreadyResolved(
            f"unmatched report {unmatched_id} was resolved as {entry.resolution}",
            unmatched_id=unmatched_id,
            resolution=entry.resolution,
        )
    return entry.result


def matched_by_hand(result: UnmatchedResult, staff_id: str, session_ref: str | None) -> ReportedResult:
    """The report as an office corrects it: the person it names (a staff id mistyped at the platform) and,
    when given, the session. Everything else — its ids, times and outcome — stays as reported, so the
    completion it makes is the one automatic matching would have made (same completion id)."""
    person = staff_id.strip()
    if not person:
        raise InvalidSession("staff_id must not be blank")
    session = (session_ref or "").strip() or result.reported.session_ref
    return replace(result.reported, staff_id=person, session_ref=session)


def check_hand_match(
    corrected: ReportedResult, session: Session | None, on_roster: bool | None, window: FactWindow
) -> None:
    """The plausibility rules of automatic matching, applied to the corrected report: the session must
    exist, the person must not be missing from that year's roster, and nothing dated in the future."""
    window.check_occurred(corrected.occurred_at)
    reason = unmatched_reason(session, on_roster)
    if reason is UnmatchedReason.UNKNOWN_SESSION:
        raise UnknownSession(f"no session named {corrected.session_ref}", session_ref=corrected.session_ref)
    if reason is UnmatchedReason.UNKNOWN_STAFF:
        raise UnknownStaff(
            f"{corrected.staff_id} is not on the FY{corrected.fiscal_year} roster", staff_id=corrected.staff_id
        )


def dismissal_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise DismissalReasonRequired("reason is blank")
    return text


# ---- completions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    """A person met a session's move_on (SessionCompleted); fiscal year from occurred_at in Japan time."""

    completion_id: str
    session_id: str
    staff_id: str
    fiscal_year: int
    method: Method
    occurred_at: datetime
    recorded_at: datetime
    source: CompletionSource
    success: bool | None = None
    score: float | None = None


def complete_from_report(
    session: Session, reported: ReportedResult, shown_so_far: Outcome, recorded_at: datetime
) -> Completion | None:
    """The completion a reported result yields, given everything the person has shown for the session
    (cmi5 allows `completed` and `passed` to arrive as separate statements), or None if not yet met."""
    if not meets_move_on(session.move_on, shown_so_far.merge(reported.outcome)):
        return None
    return completion_if_met(session, reported, recorded_at)


def completion_if_met(session: Session, reported: ReportedResult, recorded_at: datetime) -> Completion:
    """The completion a reported result makes once the session's move_on is met."""
    return Completion(
        completion_id=reported.completion_id,
        session_id=session.session_id,
        staff_id=reported.staff_id,
        fiscal_year=reported.fiscal_year,
        method=session.method,
        occurred_at=reported.occurred_at,
        recorded_at=recorded_at,
        source=reported.source,
        success=reported.success,
        score=reported.score,
    )


def take_attendance(
    session: Session | None,
    staff_ids: Sequence[str],
    *,
    already_attended: frozenset[str],
    not_on_roster: frozenset[str],
    occurred_at: datetime,
    recorded_at: datetime,
    window: FactWindow | None = None,
) -> list[Completion]:
    """Completions for the people newly marked present; a person already recorded is not counted twice.

    Refused as a whole (nothing recorded) for an unknown session, an e-learning session, attendance dated
    in the future (stated, or a session that has not ended yet), a person not on the roster, or when the
    new attendees would exceed the session's capacity."""
    if session is None:
        raise UnknownSession("no such session")
    (window or FactWindow(recorded_at)).check_occurred(occurred_at)
    if not session.takes_attendance:
        raise AttendanceNotApplicable(
            f"session {session.session_id} is {session.method.value}", method=session.method.value
        )
    requested = list(dict.fromkeys(staff_id.strip() for staff_id in staff_ids))
    if not requested or any(not staff_id for staff_id in requested):
        raise InvalidSession("attendance needs at least one non-blank staff id")
    unknown = sorted(set(requested) & not_on_roster)
    if unknown:
        raise UnknownStaff(f"{len(unknown)} staff id(s) not on the FY{session.fiscal_year} roster", staff_ids=unknown)
    newcomers = [staff_id for staff_id in requested if staff_id not in already_attended]
    if session.capacity is not None and len(already_attended) + len(newcomers) > session.capacity:
        raise CapacityExceeded(
            f"{len(already_attended)} attended and {len(newcomers)} more would exceed {session.capacity}",
            capacity=session.capacity,
            attended=len(already_attended),
            requested=len(newcomers),
        )
    return [
        Completion(
            completion_id=deterministic_id("training.completion.attendance", session.session_id, staff_id),
            session_id=session.session_id,
            staff_id=staff_id,
            fiscal_year=fiscal_year_of(occurred_at),
            method=session.method,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            source=CompletionSource.ATTENDANCE,
        )
        for staff_id in newcomers
    ]


def attendance_time(session: Session, stated: datetime | None, recorded_at: datetime) -> datetime:
    """When attendance happened: as stated, else the session's end, else its start, else now."""
    return stated or session.ends_at or session.starts_at or recorded_at


def import_completion(
    session: Session | None,
    staff_id: str,
    occurred_at: datetime,
    recorded_at: datetime,
    *,
    on_roster: bool | None = None,
    success: bool | None = None,
    score: float | None = None,
    window: FactWindow | None = None,
) -> Completion:
    """A past completion from a backfill; the same row imported twice yields the same completion id.
    A row dated in the future (or before the first fiscal year) is refused."""
    (window or FactWindow(recorded_at)).check_occurred(occurred_at)
    if session is None:
        raise UnknownSession("no such session")
    if not staff_id.strip():
        raise InvalidSession("staff_id must not be blank")
    if not person_is_known(on_roster):
        raise UnknownStaff(f"not on the FY{fiscal_year_of(occurred_at)} roster")
    return Completion(
        completion_id=deterministic_id(
            "training.completion.import", session.session_id, staff_id, occurred_at.isoformat()
        ),
        session_id=session.session_id,
        staff_id=staff_id,
        fiscal_year=fiscal_year_of(occurred_at),
        method=session.method,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        source=CompletionSource.IMPORT,
        success=success,
        score=score,
    )


# ---- waivers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiver:
    """A completion recorded by an office's decision (prior evidence, illness): counts as met."""

    waiver_id: str
    session_id: str
    staff_id: str
    fiscal_year: int
    actor: str
    reason: str
    recorded_at: datetime


def waive_completion(
    role: Role,
    session: Session | None,
    staff_id: str,
    *,
    actor: str,
    reason: str,
    recorded_at: datetime,
    fiscal_year: int | None = None,
    window: FactWindow | None = None,
) -> Waiver:
    """A waiver counts in the given fiscal year (default: the session's); refused in a year not begun."""
    if role not in OFFICES:
        raise WaiverNotPermitted(f"role {role.value} may not waive")
    if not actor.strip():
        raise ActorRequired("actor is blank")
    if not reason.strip():
        raise ReasonRequired("reason is blank")
    if session is None:
        raise UnknownSession("no such session")
    if not staff_id.strip():
        raise InvalidSession("staff_id must not be blank")
    year = fiscal_year if fiscal_year is not None else session.fiscal_year
    (window or FactWindow(recorded_at)).check_waiver_year(year)
    return Waiver(
        waiver_id=deterministic_id("training.waiver", session.session_id, staff_id, year),
        session_id=session.session_id,
        staff_id=staff_id,
        fiscal_year=year,
        actor=actor.strip(),
        reason=reason.strip(),
        recorded_at=recorded_at,
    )


# ---- curricula --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurriculumRevision:
    """The required sessions of one stage in one fiscal year, as published at one revision (P2)."""

    fiscal_year: int
    stage: int
    revision: int
    session_ids: tuple[str, ...]


def revise_curriculum(
    fiscal_year: int,
    stage: int,
    requested_session_ids: Iterable[str],
    sessions: Mapping[str, Session],
    latest: CurriculumRevision | None,
) -> CurriculumRevision | None:
    """The next revision of a curriculum, or None when the requested sessions are those already published."""
    if stage not in STAGES:
        raise InvalidStage(f"stage {stage}", stage=stage)
    required = tuple(sorted({session_id.strip() for session_id in requested_session_ids}))
    if not required or any(not session_id for session_id in required):
        raise EmptyCurriculum("no session ids given")
    unknown = [session_id for session_id in required if session_id not in sessions]
    if unknown:
        raise UnknownSession(f"{len(unknown)} unknown session(s)", session_ids=unknown)
    misfits = [
        session_id
        for session_id in required
        if sessions[session_id].fiscal_year != fiscal_year
        or sessions[session_id].audience is not Audience.PROMOTER
        or sessions[session_id].stage != stage
    ]
    if misfits:
        raise CurriculumSessionMismatch(
            f"not DX promoter sessions of FY{fiscal_year} stage {stage}", session_ids=misfits
        )
    if latest is not None and latest.session_ids == required:
        return None
    return CurriculumRevision(
        fiscal_year=fiscal_year,
        stage=stage,
        revision=(latest.revision + 1) if latest else 1,
        session_ids=required,
    )


def curriculum_event_id(revision: CurriculumRevision) -> str:
    return deterministic_id("training.CurriculumPublished", revision.fiscal_year, revision.stage, revision.revision)


def stage_completed_under_any_revision(revisions: Iterable[CurriculumRevision], sessions_met: frozenset[str]) -> bool:
    """P3 with curriculum changes: met every required session of at least one published revision."""
    return any(set(revision.session_ids) <= sessions_met for revision in revisions)
