"""The nomination rules of POLICY.md §4 (N1–N6), the organisation of §2, and the roster import diff.

Pure: values in, a decision out, or a named refusal carrying the rule code. The repository loads the
facts a decision needs (`NominationFacts`); the database also enforces N1 and N4 with unique indexes,
because two requests that both see a free slot must not both be accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Generic, TypeVar

from dx_shared.calendar import fiscal_year_label_ja, latest_accepted_fiscal_year
from dx_shared.roles import OFFICES, Caller, Role


class Slot(StrEnum):
    RECOMMENDED = "recommended"  # 推薦枠: one per department per fiscal year, new people only
    SELF = "self"  # 自薦枠: motivated volunteers, new or continuing


class NominationStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


SLOT_LABELS_JA: Mapping[Slot, str] = {Slot.RECOMMENDED: "推薦枠", Slot.SELF: "自薦枠"}


@dataclass(frozen=True)
class Department:
    """所属: the unit that nominates, as listed for one fiscal year."""

    code: str
    name: str
    bureau: str
    active: bool = True
    email: str | None = None  # the department's contact address for reminders (optional column)


@dataclass(frozen=True)
class StaffMember:
    """職員 on one fiscal year's roster."""

    staff_id: str
    name: str
    department_code: str
    is_manager: bool = False
    email: str | None = None  # work address for reminders (optional column)


@dataclass(frozen=True)
class Nomination:
    """An accepted nomination (推薦・自薦) of one staff member for one fiscal year."""

    nomination_id: str
    staff_id: str
    department_code: str
    fiscal_year: int
    slot: Slot
    status: NominationStatus
    nominated_at: datetime
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status is NominationStatus.ACTIVE


# ---- refusals ---------------------------------------------------------------------------------


class NominationRefused(Exception):
    """A request the policy does not allow; `code` names the rule, the messages explain it to people."""

    code: ClassVar[str] = "NOMINATION_REFUSED"
    rule: ClassVar[str] = ""
    title_ja: ClassVar[str] = "推薦を受け付けられません"
    title_en: ClassVar[str] = "The nomination cannot be accepted"

    def __init__(self, detail_ja: str, detail_en: str) -> None:
        super().__init__(detail_en)
        self.detail_ja = detail_ja
        self.detail_en = detail_en


class QuotaExceeded(NominationRefused):
    code = "QUOTA_EXCEEDED"
    rule = "N1"
    title_ja = "この所属の推薦枠は今年度すでに使われています"
    title_en = "The department's recommended slot is already used this fiscal year"


class NotNew(NominationRefused):
    code = "NOT_NEW"
    rule = "N2"
    title_ja = "推薦枠は新規の職員に限られます（継続は自薦枠で）"
    title_en = "The recommended slot is for new people only (continuing people use the self slot)"


class AlreadyNominated(NominationRefused):
    code = "ALREADY_NOMINATED"
    rule = "N4"
    title_ja = "この職員は今年度すでに推薦・自薦されています"
    title_en = "The staff member already has an active nomination this fiscal year"


class UnknownStaff(NominationRefused):
    code = "UNKNOWN_STAFF"
    rule = "N6"
    title_ja = "この年度の職員名簿に載っていない職員です"
    title_en = "The staff member is not on that fiscal year's roster"


class UnknownDepartment(NominationRefused):
    code = "UNKNOWN_DEPARTMENT"
    rule = "N6"
    title_ja = "この年度の所属一覧にない所属です"
    title_en = "The department is not in that fiscal year's department list"


class DepartmentInactive(NominationRefused):
    code = "DEPARTMENT_INACTIVE"
    rule = "N6"
    title_ja = "この所属は今年度有効ではありません"
    title_en = "The department is not active in that fiscal year"


class NotOwnDepartment(NominationRefused):
    code = "NOT_OWN_DEPARTMENT"
    rule = "N6"
    title_ja = "推薦できるのは自所属の職員だけです"
    title_en = "A department can nominate only its own staff"


class FiscalYearClosed(NominationRefused):
    code = "FISCAL_YEAR_CLOSED"
    rule = "N6"
    title_ja = "この年度は締められています"
    title_en = "The fiscal year is closed"


class FiscalYearTooFarAhead(NominationRefused):
    code = "FISCAL_YEAR_TOO_FAR_AHEAD"
    rule = "N6"
    title_ja = "推薦・自薦を受け付けるのは今年度と来年度までです"
    title_en = "Nominations are accepted for this fiscal year and the next one only"


class AlreadyWithdrawn(NominationRefused):
    code = "ALREADY_WITHDRAWN"
    title_ja = "この推薦はすでに取り下げられています"
    title_en = "The nomination has already been withdrawn"


class NominationNotFound(NominationRefused):
    code = "NOMINATION_NOT_FOUND"
    title_ja = "推薦が見つかりません"
    title_en = "No such nomination"


class RoleNotPermitted(NominationRefused):
    code = "ROLE_NOT_PERMITTED"
    title_ja = "この操作はあなたの役割ではできません"
    title_en = "Your role may not do this"


REFUSALS: tuple[type[NominationRefused], ...] = (
    QuotaExceeded,
    NotNew,
    AlreadyNominated,
    UnknownStaff,
    UnknownDepartment,
    DepartmentInactive,
    NotOwnDepartment,
    FiscalYearClosed,
    FiscalYearTooFarAhead,
    AlreadyWithdrawn,
    NominationNotFound,
    RoleNotPermitted,
)


# ---- nominating -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NominationRequest:
    """推薦・自薦の申込み. `department_code` is the nominating department; it must be the nominee's own."""

    staff_id: str
    fiscal_year: int
    slot: Slot
    department_code: str | None = None


@dataclass(frozen=True)
class NominationFacts:
    """What the rules need to know about one request, as the repository found it."""

    fiscal_year_closed: bool
    nominee: StaffMember | None
    nominee_department: Department | None
    active_nomination: Nomination | None
    recommended_slot_holder: Nomination | None
    promoter_years: frozenset[int] = field(default_factory=frozenset)


def nominate(request: NominationRequest, facts: NominationFacts, *, nomination_id: str, at: datetime) -> Nomination:
    """Accepts the request as a new active nomination, or raises the refusal of the first rule broken."""
    check_fiscal_year_open(request, facts)
    nominee = check_nominee_on_roster(request, facts)
    check_nominating_department_is_own(request, nominee)
    department = check_department_active(nominee, facts)
    check_one_active_nomination_per_year(request, facts)
    if request.slot is Slot.RECOMMENDED:
        check_recommended_nominee_is_new(request, facts)
        check_recommended_slot_free(department, request, facts)
    return Nomination(
        nomination_id=nomination_id,
        staff_id=nominee.staff_id,
        department_code=department.code,
        fiscal_year=request.fiscal_year,
        slot=request.slot,
        status=NominationStatus.ACTIVE,
        nominated_at=at,
    )


def check_fiscal_year_not_too_far_ahead(fiscal_year: int, now: datetime) -> None:
    """N6: an office plans at most one year ahead; a nomination for a later fiscal year cannot be true."""
    latest = latest_accepted_fiscal_year(now)
    if fiscal_year > latest:
        raise FiscalYearTooFarAhead(
            f"{fiscal_year_label_ja(fiscal_year)}の推薦・自薦はまだ受け付けられません"
            f"（{fiscal_year_label_ja(latest)}まで）。",
            f"FY{fiscal_year} is more than one year ahead; nominations are accepted up to FY{latest}.",
        )


def check_fiscal_year_open(request: NominationRequest, facts: NominationFacts) -> None:
    """N6: nominations are accepted until the fiscal year is closed."""
    if facts.fiscal_year_closed:
        raise FiscalYearClosed(
            f"{fiscal_year_label_ja(request.fiscal_year)}は締められているため、推薦・自薦を受け付けられません。",
            f"FY{request.fiscal_year} is closed; nominations for it are no longer accepted.",
        )


def check_nominee_on_roster(request: NominationRequest, facts: NominationFacts) -> StaffMember:
    """N6: the nominee is on that fiscal year's roster."""
    if facts.nominee is None:
        raise UnknownStaff(
            f"職員番号 {request.staff_id} は{fiscal_year_label_ja(request.fiscal_year)}の職員名簿にありません。",
            f"Staff id {request.staff_id} is not on the FY{request.fiscal_year} roster.",
        )
    return facts.nominee


def check_nominating_department_is_own(request: NominationRequest, nominee: StaffMember) -> None:
    """N6: for the recommended slot the nominating department is the nominee's own."""
    if request.department_code is not None and request.department_code != nominee.department_code:
        raise NotOwnDepartment(
            f"職員番号 {nominee.staff_id} の所属は {nominee.department_code} で、"
            f"{request.department_code} ではありません。",
            f"Staff id {nominee.staff_id} belongs to department {nominee.department_code}, "
            f"not {request.department_code}.",
        )


def check_department_active(nominee: StaffMember, facts: NominationFacts) -> Department:
    """N6: the nominee is in an active department of that fiscal year's list."""
    department = facts.nominee_department
    if department is None:
        raise UnknownDepartment(
            f"所属コード {nominee.department_code} は所属一覧にありません。",
            f"Department {nominee.department_code} is not in the fiscal year's department list.",
        )
    if not department.active:
        raise DepartmentInactive(
            f"所属 {department.code} は有効ではありません。",
            f"Department {department.code} is not active.",
        )
    return department


def check_one_active_nomination_per_year(request: NominationRequest, facts: NominationFacts) -> None:
    """N4: at most one active nomination per staff member per fiscal year, whatever the slot."""
    held = facts.active_nomination
    if held is not None:
        raise AlreadyNominated(
            f"職員番号 {request.staff_id} は{fiscal_year_label_ja(request.fiscal_year)}に既に"
            f"{SLOT_LABELS_JA[held.slot]}で登録されています。",
            f"Staff id {request.staff_id} already has an active {held.slot.value}-slot nomination "
            f"for FY{request.fiscal_year}.",
        )


def check_recommended_nominee_is_new(request: NominationRequest, facts: NominationFacts) -> None:
    """N2/N5: the recommended nominee was never a DX promoter in an earlier year (withdrawn ones aside)."""
    earlier = sorted(year for year in facts.promoter_years if year < request.fiscal_year)
    if earlier:
        years = ", ".join(str(year) for year in earlier)
        labels = "・".join(fiscal_year_label_ja(year) for year in earlier)
        raise NotNew(
            f"職員番号 {request.staff_id} は{labels}にDX推進員でした。継続の場合は自薦枠で申し込んでください。",
            f"Staff id {request.staff_id} was a DX promoter in FY{years}; "
            "continuing people apply through the self slot.",
        )


def check_recommended_slot_free(department: Department, request: NominationRequest, facts: NominationFacts) -> None:
    """N1: each department nominates at most one person per fiscal year; a withdrawal frees the slot."""
    holder = facts.recommended_slot_holder
    if holder is not None and holder.is_active:
        raise QuotaExceeded(
            f"所属 {department.code} の{fiscal_year_label_ja(request.fiscal_year)}の推薦枠は使用済みです。",
            f"Department {department.code} has already used its FY{request.fiscal_year} recommended slot.",
        )


def quota_exceeded(department_code: str, fiscal_year: int) -> QuotaExceeded:
    """The N1 refusal when the database, not the loaded facts, found the slot taken (a race)."""
    return QuotaExceeded(
        f"所属 {department_code} の{fiscal_year_label_ja(fiscal_year)}の推薦枠は使用済みです。",
        f"Department {department_code} has already used its FY{fiscal_year} recommended slot.",
    )


def already_nominated(staff_id: str, fiscal_year: int) -> AlreadyNominated:
    """The N4 refusal when the database found a concurrent nomination of the same person."""
    return AlreadyNominated(
        f"職員番号 {staff_id} は{fiscal_year_label_ja(fiscal_year)}に既に推薦・自薦されています。",
        f"Staff id {staff_id} already has an active nomination for FY{fiscal_year}.",
    )


def nomination_not_found(nomination_id: str) -> NominationNotFound:
    return NominationNotFound(f"推薦 {nomination_id} は見つかりません。", f"Nomination {nomination_id} does not exist.")


# ---- withdrawing ------------------------------------------------------------------------------


def withdraw(nomination: Nomination, *, reason: str, at: datetime, fiscal_year_closed: bool = False) -> Nomination:
    """取下げ: frees the slot (N1) and the person's year (N4); withdrawing twice is refused.

    A closed fiscal year's decisions are final (P6), so its nominations can no longer be withdrawn.
    """
    if fiscal_year_closed:
        raise FiscalYearClosed(
            f"{fiscal_year_label_ja(nomination.fiscal_year)}は締められているため、取り下げられません。",
            f"FY{nomination.fiscal_year} is closed; its nominations can no longer be withdrawn.",
        )
    if not nomination.is_active:
        raise AlreadyWithdrawn(
            f"推薦 {nomination.nomination_id} はすでに取り下げられています。",
            f"Nomination {nomination.nomination_id} was already withdrawn.",
        )
    return replace(nomination, status=NominationStatus.WITHDRAWN, withdrawn_at=at, withdrawal_reason=reason)


# ---- importing rosters ------------------------------------------------------------------------


RowT = TypeVar("RowT", Department, StaffMember)


@dataclass(frozen=True)
class ChangedRow(Generic[RowT]):
    before: RowT
    after: RowT

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(
            item.name
            for item in fields(self.after)
            if getattr(self.before, item.name) != getattr(self.after, item.name)
        )


@dataclass(frozen=True)
class ImportDiff(Generic[RowT]):
    """How a fiscal year's list changes when a whole new list replaces it."""

    added: tuple[RowT, ...]
    changed: tuple[ChangedRow[RowT], ...]
    unchanged: int
    removed: tuple[str, ...]

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @property
    def added_or_changed(self) -> tuple[RowT, ...]:
        return self.added + tuple(change.after for change in self.changed)


def diff_import(existing: Mapping[str, RowT], incoming: Mapping[str, RowT]) -> ImportDiff[RowT]:
    """Compares the stored list of a fiscal year with an imported one, both keyed by code or staff id."""
    added = tuple(row for key, row in incoming.items() if key not in existing)
    changed = tuple(
        ChangedRow(before=existing[key], after=row)
        for key, row in incoming.items()
        if key in existing and existing[key] != row
    )
    unchanged = sum(1 for key, row in incoming.items() if key in existing and existing[key] == row)
    removed = tuple(sorted(key for key in existing if key not in incoming))
    return ImportDiff(added=added, changed=changed, unchanged=unchanged, removed=removed)


# ---- who may do what (POLICY.md §5) ---------------------------------------------------------------


def as_requested_by(caller: Caller, request: NominationRequest) -> NominationRequest:
    """A department head nominates for their own department; the department defaults to theirs."""
    if caller.role is Role.DEPARTMENT and request.department_code is None:
        return replace(request, department_code=caller.department_code)
    return request


def check_may_nominate(caller: Caller, request: NominationRequest) -> None:
    """Offices nominate anyone; a department head for their own department; a trainee only themselves."""
    if caller.role in OFFICES:
        return
    if caller.role is Role.DEPARTMENT and request.department_code == caller.department_code:
        return
    if caller.role is Role.TRAINEE and request.slot is Slot.SELF and request.staff_id == caller.staff_id:
        return
    raise RoleNotPermitted(
        "所属は自所属の職員のみ、研修受講者は本人の自薦のみ申し込めます。",
        f"A {caller.role.value} may not make this nomination: departments nominate their own staff, "
        "trainees only themselves in the self slot.",
    )


def check_may_withdraw(caller: Caller, nomination: Nomination) -> None:
    if caller.role in OFFICES:
        return
    if caller.role is Role.DEPARTMENT and nomination.department_code == caller.department_code:
        return
    if caller.role is Role.TRAINEE and nomination.slot is Slot.SELF and nomination.staff_id == caller.staff_id:
        return
    raise RoleNotPermitted(
        "所属は自所属の推薦のみ、研修受講者は本人の自薦のみ取り下げられます。",
        f"A {caller.role.value} may not withdraw this nomination.",
    )
