"""The reporting rules, pure: what each projected row counts towards, and how reports are shaped.

Every projection is a set of *entity rows* (a trainee-year, a nomination, a person's baseline year,
a person's attendance of a session) and a set of *tallies* (counters the reports read). A row's
`contributions` say which counters it adds one to; the repository keeps each tally equal to the sum
of the contributions of the current rows by applying the difference before/after each change. So a
report reads a handful of counters whatever the number of events, and the outcome depends only on
the set of facts, never on their order or on duplicates (POLICY.md P8).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from dx_shared.calendar import JST, fiscal_year_code, fiscal_year_label_ja

STAGE_NAMES: Mapping[int, tuple[str, str]] = {
    1: ("業務効率化", "business efficiency"),
    2: ("業務改善", "business improvement"),
    3: ("業務改革", "business reform"),
    4: ("データ利活用", "data utilisation"),
    5: ("ＡＩ等活用", "AI utilisation"),
}
STAGES: tuple[int, ...] = tuple(STAGE_NAMES)
FINAL_STAGE = 5


# ---- tallies ------------------------------------------------------------------------------------

PlanMeasure = Literal["entered", "new", "completed"]
DepartmentMeasure = Literal["recommended", "self", "completions"]
BaselineMeasure = Literal["staff", "staff_done", "managers", "managers_done"]
SessionMeasure = Literal["completions", "waived"]


@dataclass(frozen=True, order=True)
class PlanCount:
    """One counter of the 育成計画 table: trainee-years of a stage in a fiscal year."""

    fiscal_year: int
    stage: int
    measure: PlanMeasure


@dataclass(frozen=True, order=True)
class DepartmentCount:
    fiscal_year: int
    department_code: str
    measure: DepartmentMeasure


@dataclass(frozen=True, order=True)
class BaselineCount:
    fiscal_year: int
    department_code: str
    measure: BaselineMeasure


@dataclass(frozen=True, order=True)
class SessionCount:
    session_id: str
    measure: SessionMeasure


TallyKey = PlanCount | DepartmentCount | BaselineCount | SessionCount
Contributions = Counter[TallyKey]


def tally_difference(before: Contributions, after: Contributions) -> dict[TallyKey, int]:
    """What to add to the tallies when a row's contributions change from `before` to `after`."""
    keys = set(before) | set(after)
    return {key: after[key] - before[key] for key in sorted(keys, key=repr) if after[key] != before[key]}


def merge_differences(differences: Iterable[Mapping[TallyKey, int]]) -> dict[TallyKey, int]:
    total: Counter[TallyKey] = Counter()
    for difference in differences:
        total.update(difference)
    return {key: delta for key, delta in total.items() if delta}


# ---- trainee-years (stage entries and completions) ---------------------------------------------

DecisionKind = Literal["advanced", "repeated", "cancelled", "retracted"]
LIVE_DECISIONS: frozenset[str] = frozenset({"advanced", "repeated"})


@dataclass(frozen=True)
class Decision:
    """A stage decision by the progression service; `corrects` names the earlier decision it replaces."""

    kind: DecisionKind
    stage: int
    from_stage: int | None
    decided_at: datetime
    event_id: str
    corrects: str | None = None

    @property
    def order_key(self) -> tuple[datetime, str]:
        return (self.decided_at, self.event_id)


@dataclass(frozen=True)
class StageCompletion:
    """A StageCompleted: it counts only while `decision` (the stage decision it completes) stands.

    A completion without a decision id (an older producer) counts whatever the decision.
    """

    stage: int
    completed_at: datetime
    decision_id: str | None = None

    @property
    def order_key(self) -> tuple[int, datetime, str]:
        return (self.stage, self.completed_at, self.decision_id or "")


@dataclass(frozen=True)
class TraineeYear:
    """A staff member's year as a DX promoter (DX推進員): every decision and completion known for it.

    What the year counts as is derived from the facts, so it is the same whatever order they arrived in
    (POLICY.md P8): the standing decision is the latest one that no other decision corrects, and a
    completion counts while the decision it completes is the standing one. A completion that turned out
    late once the closing was known is withdrawn by progression re-deciding the year (P6), which is how
    an earlier StageCompleted stops counting.
    """

    staff_id: str
    fiscal_year: int
    decisions: tuple[Decision, ...] = ()
    completions: tuple[StageCompletion, ...] = ()
    department_code: str | None = None

    @property
    def decision(self) -> Decision | None:
        corrected = {decision.corrects for decision in self.decisions if decision.corrects}
        standing = [decision for decision in self.decisions if decision.event_id not in corrected]
        return max(standing or self.decisions, key=lambda decision: decision.order_key, default=None)

    @property
    def completion(self) -> StageCompletion | None:
        """The counted completion: the highest stage (then latest) among those that still count."""
        decision = self.decision
        standing_id = decision.event_id if decision is not None else None
        counted = [c for c in self.completions if c.decision_id is None or c.decision_id == standing_id]
        return max(counted, key=lambda completion: completion.order_key, default=None)

    @property
    def completed_stage(self) -> int | None:
        completion = self.completion
        return completion.stage if completion is not None else None

    @property
    def completed_at(self) -> datetime | None:
        completion = self.completion
        return completion.completed_at if completion is not None else None

    @property
    def live_decision(self) -> Decision | None:
        """The standing decision while it names a stage; None when undone (withdrawn or retracted)."""
        decision = self.decision
        return decision if decision is not None and decision.kind in LIVE_DECISIONS else None

    @property
    def stage(self) -> int | None:
        decision = self.live_decision
        return decision.stage if decision is not None else None

    @property
    def is_new(self) -> bool:
        """Newly entering stage 1 (from_stage 0): what the 200-a-year target counts."""
        return self.stage is not None and self.decision is not None and self.decision.from_stage == 0


def with_decision(trainee_year: TraineeYear, decision: Decision) -> TraineeYear:
    if any(known.event_id == decision.event_id for known in trainee_year.decisions):
        return trainee_year
    decisions = tuple(sorted((*trainee_year.decisions, decision), key=lambda known: known.order_key))
    return replace(trainee_year, decisions=decisions)


def with_completion(trainee_year: TraineeYear, completion: StageCompletion) -> TraineeYear:
    if completion in trainee_year.completions:
        return trainee_year
    completions = tuple(sorted((*trainee_year.completions, completion), key=lambda known: known.order_key))
    return replace(trainee_year, completions=completions)


def with_department(trainee_year: TraineeYear, department_code: str | None) -> TraineeYear:
    return replace(trainee_year, department_code=department_code)


def trainee_year_contributions(trainee_year: TraineeYear) -> Contributions:
    counts: Contributions = Counter()
    year = trainee_year.fiscal_year
    if trainee_year.stage is not None:
        counts[PlanCount(year, trainee_year.stage, "entered")] += 1
        if trainee_year.is_new:
            counts[PlanCount(year, trainee_year.stage, "new")] += 1
    if trainee_year.completed_stage is not None:
        counts[PlanCount(year, trainee_year.completed_stage, "completed")] += 1
        if trainee_year.department_code is not None:
            counts[DepartmentCount(year, trainee_year.department_code, "completions")] += 1
    return counts


def trainee_year_status(trainee_year: TraineeYear, *, withdrawn: bool = False, finished_before: bool = False) -> str:
    """`cancelled`, `finished` (修了), `completed`, `in_training` or `not_decided`, from the facts only.

    A year with a standing stage decision is in training, completed, or finished (stage 5 completed in
    it, or at stage 5 after finishing in an earlier year: 修了 is for good). A year without one is
    `cancelled` when its nominations were withdrawn (`withdrawn`, see `year_withdrawn`), whether or not a
    decision had been announced for it, and otherwise `not_decided` (判定待ち: it waits for an earlier
    year's outcome, P6) — a retracted provisional decision is not a cancellation.
    """
    if trainee_year.stage is None:
        return "cancelled" if withdrawn else "not_decided"
    if trainee_year.completed_stage == FINAL_STAGE or (finished_before and trainee_year.stage == FINAL_STAGE):
        return "finished"
    if trainee_year.completed_stage is not None:
        return "completed"
    return "in_training"


def year_withdrawn(
    nominations: Iterable[Nomination],
    closed_at: datetime | None,
    completions: Iterable[tuple[str, datetime | None]],
    curriculum_sessions: Iterable[str],
) -> bool:
    """P7 from the facts: every nomination of the year was withdrawn (a withdrawal recorded after the
    year's closing does not count) and no session of the year's curricula (any revision) was met by a
    completion or waiver recorded by the closing. `completions` are (session_id, recorded_at) of the year.
    """
    nominated = [n for n in nominations if n.nominated]
    if not nominated:
        return False
    if any(not n.withdrawn or is_late(n.withdrawn_at, closed_at) for n in nominated):
        return False
    sessions = set(curriculum_sessions)
    return not any(
        session_id in sessions and not is_late(recorded_at, closed_at) for session_id, recorded_at in completions
    )


STATUS_LABELS_JA: Mapping[str, str] = {
    "cancelled": "取消し",
    "finished": "全ステージ修了",
    "completed": "ステージ修了",
    "in_training": "受講中",
    "not_decided": "判定待ち",
}


# ---- nominations -------------------------------------------------------------------------------

Slot = Literal["recommended", "self"]


@dataclass(frozen=True)
class Nomination:
    """A nomination as the reports know it; a withdrawal may arrive before the nomination it withdraws."""

    nomination_id: str
    staff_id: str
    fiscal_year: int
    department_code: str | None = None
    slot: Slot | None = None
    nominated: bool = False
    withdrawn: bool = False
    withdrawn_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.nominated and not self.withdrawn


def nomination_contributions(nomination: Nomination) -> Contributions:
    counts: Contributions = Counter()
    if nomination.is_active and nomination.department_code is not None and nomination.slot is not None:
        counts[DepartmentCount(nomination.fiscal_year, nomination.department_code, nomination.slot)] += 1
    return counts


def trainee_department(nominations: Iterable[Nomination]) -> str | None:
    """The department a trainee-year's completions count for: its active nomination's, else the last known."""
    known = sorted((n for n in nominations if n.department_code), key=lambda n: n.nomination_id)
    active = [n for n in known if n.is_active]
    chosen = active[0] if active else (known[-1] if known else None)
    return chosen.department_code if chosen else None


# ---- baseline (基本方針1) ------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselinePerson:
    """A staff member's baseline year: roster facts of that year and the baseline sessions they met.

    The baseline is met by completing at least one all-staff session (e-learning, classroom or
    groupware training are alternatives, POLICY.md §3); the management module by at least one
    managers' session. Only people on the fiscal year's roster are counted, in that year's department.
    """

    fiscal_year: int
    staff_id: str
    on_roster: bool = False
    department_code: str | None = None
    is_manager: bool = False
    all_staff_sessions: int = 0
    managers_sessions: int = 0


def baseline_contributions(person: BaselinePerson) -> Contributions:
    counts: Contributions = Counter()
    if not person.on_roster or person.department_code is None:
        return counts
    year, department = person.fiscal_year, person.department_code
    counts[BaselineCount(year, department, "staff")] += 1
    if person.all_staff_sessions > 0:
        counts[BaselineCount(year, department, "staff_done")] += 1
    if person.is_manager:
        counts[BaselineCount(year, department, "managers")] += 1
        if person.managers_sessions > 0:
            counts[BaselineCount(year, department, "managers_done")] += 1
    return counts


Audience = Literal["promoter", "all_staff", "managers"]


def baseline_session_shift(audience: str | None) -> tuple[int, int]:
    """How one more met session of this audience moves (all_staff_sessions, managers_sessions)."""
    if audience == "all_staff":
        return (1, 0)
    if audience == "managers":
        return (0, 1)
    return (0, 0)


def with_sessions_shifted(person: BaselinePerson, shift: tuple[int, int], times: int = 1) -> BaselinePerson:
    return replace(
        person,
        all_staff_sessions=person.all_staff_sessions + shift[0] * times,
        managers_sessions=person.managers_sessions + shift[1] * times,
    )


@dataclass(frozen=True)
class Attendance:
    """One person's completion records of one session (several ids may report the same completion)."""

    session_id: str
    staff_id: str
    completions: int = 0
    waivers: int = 0

    @property
    def met(self) -> bool:
        return self.completions + self.waivers > 0


def attendance_contributions(attendance: Attendance) -> Contributions:
    counts: Contributions = Counter()
    if attendance.met:
        counts[SessionCount(attendance.session_id, "completions")] += 1
        if attendance.completions == 0:
            counts[SessionCount(attendance.session_id, "waived")] += 1
    return counts


def is_late(recorded_at: datetime | None, closed_at: datetime | None) -> bool:
    """A completion learned after its fiscal year was closed is recorded but reported as late (P6)."""
    return recorded_at is not None and closed_at is not None and recorded_at > closed_at


# ---- rates -------------------------------------------------------------------------------------


def rate(done: int, total: int) -> float | None:
    """Share of `total` reached, rounded to 4 places; None when there is nobody to count."""
    if total <= 0:
        return None
    return round(done / total, 4)


# ---- the 育成計画 plan table ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanTargets:
    """The plan period and its targets (configuration: later plans follow, POLICY.md §1)."""

    first_year: int = 2024
    last_year: int = 2028
    new_per_year: int = 200
    new_total: int = 1000

    def covers(self, fiscal_year: int) -> bool:
        return self.first_year <= fiscal_year <= self.last_year



@dataclass(frozen=True)
class Figure:
    """One headline figure, defined once: its label (to quote as is) and what it counts."""

    key: str
    label_ja: str
    label_en: str
    definition_ja: str
    definition_en: str


# The plan's figures. The target (200 a year, 1,000 over the period) is about *new distinct people*;
# the per-stage rows count *trainee-years* (延べ) and have no target: a person repeating stage 1 is a
# trainee-year of stage 1 but not a new DX promoter, so the two are never put against the same target.
NEW_PROMOTERS = Figure(
    "new_promoters", "新規DX推進員（実人数）", "New DX promoters (distinct people)",
    "その年度に初めてDX推進員となり、ステージ1に入った職員の人数。同じ職員は一度だけ数える。目標は年度ごとの人数。",
    "Staff who became DX promoters for the first time in the fiscal year (entered stage 1); each person once.",
)
NEW_PROMOTERS_CUMULATIVE = Figure(
    "new_promoters_cumulative", "累計DX推進員（実人数）", "DX promoters over the plan period (distinct people)",
    "表示期間に新規DX推進員となった職員の人数の合計。各職員は新規となった年度に一度だけ数えるため実人数になる。",
    "The sum of new DX promoters over the years shown: each person counts once, in the year they entered.",
)
STAGE_TRAINEES = Figure(
    "stage_trainees", "ステージ別受講者数（延べ）", "Trainees per stage (trainee-years)",
    "その年度にそのステージで受講した人数。継続・再受講者を含み、複数年度受講した職員は年度ごとに数える（延べ）。目標はない。",
    "People training at the stage in the fiscal year, continuing and repeating ones included; a person is "
    "counted in each year they train (trainee-years). No target.",
)
STAGE_COMPLETIONS = Figure(
    "stage_completions", "ステージ別修了者数（延べ）", "Stage completions (trainee-years)",
    "その年度にそのステージの必須研修をすべて修了した人数（延べ）。",
    "People who completed every required session of the stage in the fiscal year (trainee-years).",
)
PLAN_FIGURES: tuple[Figure, ...] = (NEW_PROMOTERS, NEW_PROMOTERS_CUMULATIVE, STAGE_TRAINEES, STAGE_COMPLETIONS)


@dataclass(frozen=True)
class StageYearTally:
    fiscal_year: int
    stage: int
    entered: int = 0
    new: int = 0
    completed: int = 0


@dataclass(frozen=True)
class PlanCell:
    """A stage in a fiscal year: trainee-years (延べ) entered and completed; `new` is the distinct people
    who entered for the first time (stage 1 only). `plan` stays for compatibility and is always None:
    the target is on the new DX promoters (`NewPromoters`), not on a stage's trainee-years."""

    plan: int | None
    entered: int
    completed: int
    new: int = 0


@dataclass(frozen=True)
class PlanRow:
    stage: int
    name_ja: str
    name_en: str
    cells: tuple[PlanCell, ...]
    cumulative: PlanCell


@dataclass(frozen=True)
class NewPromoters:
    """New DX promoters against the target: one fiscal year, or 累計 when `fiscal_year` is None."""

    fiscal_year: int | None
    target: int | None
    actual: int
    share: float | None


@dataclass(frozen=True)
class PlanTable:
    fiscal_years: tuple[int, ...]
    rows: tuple[PlanRow, ...]
    new_per_year: tuple[NewPromoters, ...]
    new_cumulative: NewPromoters


def build_plan_table(
    targets: PlanTargets, tallies: Iterable[StageYearTally], first_year: int, last_year: int
) -> PlanTable:
    years = tuple(range(first_year, last_year + 1))
    by_key = {(t.fiscal_year, t.stage): t for t in tallies}
    empty = StageYearTally(0, 0)
    rows = []
    for stage in STAGES:
        cells = tuple(
            PlanCell(
                plan=None,
                entered=by_key.get((year, stage), empty).entered,
                completed=by_key.get((year, stage), empty).completed,
                new=by_key.get((year, stage), empty).new,
            )
            for year in years
        )
        cumulative = PlanCell(
            plan=None,
            entered=sum(cell.entered for cell in cells),
            completed=sum(cell.completed for cell in cells),
            new=sum(cell.new for cell in cells),
        )
        name_ja, name_en = STAGE_NAMES[stage]
        rows.append(PlanRow(stage, name_ja, name_en, cells, cumulative))
    new_per_year = []
    for year in years:
        actual = sum(by_key.get((year, stage), empty).new for stage in STAGES)
        target = targets.new_per_year if targets.covers(year) else None
        new_per_year.append(NewPromoters(year, target, actual, rate(actual, target or 0)))
    cumulative_actual = sum(entry.actual for entry in new_per_year)
    cumulative_target = targets.new_total if any(targets.covers(year) for year in years) else None
    return PlanTable(
        fiscal_years=years,
        rows=tuple(rows),
        new_per_year=tuple(new_per_year),
        new_cumulative=NewPromoters(
            None, cumulative_target, cumulative_actual, rate(cumulative_actual, cumulative_target or 0)
        ),
    )


# ---- departments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    bureau: str
    active: bool = True
    position: int | None = None  # place in the imported department list (the organisation's order)


_UNPLACED = 1 << 30


def organisation_order(departments: Iterable[Department]) -> tuple[dict[str, int], dict[str, int]]:
    """Ranks of bureaus and departments in the order of the imported department list: a bureau comes
    where its first department is listed; departments not placed by the list come last, by code."""
    placed = sorted(departments, key=lambda d: (d.position if d.position is not None else _UNPLACED, d.code))
    department_rank = {d.code: rank for rank, d in enumerate(placed)}
    bureau_rank: dict[str, int] = {}
    for department in placed:
        bureau_rank.setdefault(department.bureau, len(bureau_rank))
    return bureau_rank, department_rank


@dataclass(frozen=True)
class DepartmentRow:
    code: str
    name: str
    bureau: str
    active: bool
    recommended_slot_used: bool
    recommended: int
    self_slot: int
    trainees: int
    completions: int


@dataclass(frozen=True)
class DepartmentReport:
    fiscal_year: int
    rows: tuple[DepartmentRow, ...]
    missing_nomination: tuple[DepartmentRow, ...]
    total_trainees: int
    total_completions: int


def build_department_report(
    fiscal_year: int,
    departments: Iterable[Department],
    counts: Mapping[tuple[str, DepartmentMeasure], int],
) -> DepartmentReport:
    """Per department: recommended slot used or empty, self-slot volunteers, trainees, completions.

    Departments that appear only in counts (a nomination from a department missing from the
    year's import) are listed too, so no trainee disappears from the report.
    """
    known = {department.code: department for department in departments}
    for code, _ in counts:
        known.setdefault(code, Department(code=code, name=code, bureau="", active=False))
    bureau_rank, department_rank = organisation_order(known.values())
    rows = []
    for department in sorted(known.values(), key=lambda d: (bureau_rank[d.bureau], department_rank[d.code])):
        recommended = counts.get((department.code, "recommended"), 0)
        self_slot = counts.get((department.code, "self"), 0)
        rows.append(
            DepartmentRow(
                code=department.code,
                name=department.name,
                bureau=department.bureau,
                active=department.active,
                recommended_slot_used=recommended > 0,
                recommended=recommended,
                self_slot=self_slot,
                trainees=recommended + self_slot,
                completions=counts.get((department.code, "completions"), 0),
            )
        )
    return DepartmentReport(
        fiscal_year=fiscal_year,
        rows=tuple(rows),
        missing_nomination=tuple(row for row in rows if row.active and not row.recommended_slot_used),
        total_trainees=sum(row.trainees for row in rows),
        total_completions=sum(row.completions for row in rows),
    )


# ---- baseline report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineRate:
    key: str
    label: str
    staff: int
    staff_done: int
    staff_rate: float | None
    managers: int
    managers_done: int
    managers_rate: float | None


@dataclass(frozen=True)
class BaselineReport:
    fiscal_year: int
    departments: tuple[BaselineRate, ...]
    bureaus: tuple[BaselineRate, ...]
    overall: BaselineRate


def _baseline_rate(key: str, label: str, counts: Mapping[BaselineMeasure, int]) -> BaselineRate:
    staff, staff_done = counts.get("staff", 0), counts.get("staff_done", 0)
    managers, managers_done = counts.get("managers", 0), counts.get("managers_done", 0)
    return BaselineRate(
        key, label, staff, staff_done, rate(staff_done, staff), managers, managers_done,
        rate(managers_done, managers),
    )


def build_baseline_report(
    fiscal_year: int,
    departments: Iterable[Department],
    counts: Mapping[tuple[str, BaselineMeasure], int],
) -> BaselineReport:
    """Completion rates by department, by bureau (部局) and overall; managers rated separately."""
    known = {department.code: department for department in departments}
    per_department: dict[str, Counter[BaselineMeasure]] = {}
    for (code, measure), value in counts.items():
        per_department.setdefault(code, Counter())[measure] += value
    per_bureau: dict[str, Counter[BaselineMeasure]] = {}
    overall: Counter[BaselineMeasure] = Counter()
    bureau_rank, department_rank = organisation_order(known.values())
    department_rates = []
    for code in sorted(
        per_department,
        key=lambda c: (bureau_rank.get(known[c].bureau, _UNPLACED) if c in known else _UNPLACED,
                       department_rank.get(c, _UNPLACED), c),
    ):
        department = known.get(code, Department(code, code, ""))
        bureau = department.bureau or "（部局不明）"
        per_bureau.setdefault(bureau, Counter()).update(per_department[code])
        overall.update(per_department[code])
        department_rates.append(_baseline_rate(code, department.name, per_department[code]))
    return BaselineReport(
        fiscal_year=fiscal_year,
        departments=tuple(department_rates),
        bureaus=tuple(
            _baseline_rate(b, b, per_bureau[b])
            for b in sorted(per_bureau, key=lambda b: (bureau_rank.get(b, _UNPLACED), b))
        ),
        overall=_baseline_rate("all", "全体", overall),
    )


# ---- labels and CSV ----------------------------------------------------------------------------


def fiscal_year_label(fiscal_year: int) -> str:
    """`令和6年度 (FY2024)`: how a fiscal year is written to people."""
    return f"{fiscal_year_label_ja(fiscal_year)} ({fiscal_year_code(fiscal_year)})"


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
YES, NO = "はい", "いいえ"
_SAFE_CODE = re.compile(r"[0-9A-Za-z_-]{1,64}")


class Code(str):
    """A code (所属コード, 職員番号) whose leading zeros must survive Excel: written as `="00123"`, a
    formula Excel shows as the text 00123. Only plain codes (letters, digits, `-`, `_`) are written so;
    anything else is an ordinary, neutralised text cell."""

    __slots__ = ()


def jst_text(moment: datetime | str | None) -> str:
    """A time as the offices write it, in Japan time: `2026-07-20 13:00`."""
    if moment is None or moment == "":
        return ""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def neutralise_cell(value: object) -> str:
    """A cell a spreadsheet would run as a formula is prefixed with `'` (CSV injection); booleans are
    はい/いいえ; a plain `Code` is written `="00123"` so its leading zeros survive."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, Code) and _SAFE_CODE.fullmatch(value):
        return f'="{value}"'
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def render_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Japanese text correctly; CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise_cell(cell) for cell in row])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")
