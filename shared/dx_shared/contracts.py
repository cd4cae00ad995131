"""The v1 payload of every public event (CONTRACT.md), and the routing names derived from them.

Each payload model carries its producer and event name; the routing key
(`<producer>.<EventName>.v1`), the CloudEvents type (`jp.aomori.dx.<EventName>.v1`) and the
registry used by consumers are derived here and nowhere else. Models accept unknown extra fields,
so a newer producer never breaks an older consumer.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

CE_TYPE_PREFIX = "jp.aomori.dx."
STAGES = (1, 2, 3, 4, 5)


class Slot(StrEnum):
    RECOMMENDED = "recommended"  # 推薦枠
    SELF = "self"  # 自薦枠


class Method(StrEnum):
    E_LEARNING = "e_learning"  # e-ラーニング
    CLASSROOM = "classroom"  # 集合研修
    HANDS_ON = "hands_on"  # ハンズオン


class Audience(StrEnum):
    PROMOTER = "promoter"  # DX推進員 of a given stage
    ALL_STAFF = "all_staff"  # 全職員 baseline
    MANAGERS = "managers"  # 管理職 DX management module


class MoveOn(StrEnum):
    """cmi5-style rule for when a session counts as met."""

    COMPLETED = "completed"
    PASSED = "passed"
    COMPLETED_AND_PASSED = "completed_and_passed"
    COMPLETED_OR_PASSED = "completed_or_passed"


class CompletionSource(StrEnum):
    WEBHOOK = "webhook"
    XAPI = "xapi"
    ATTENDANCE = "attendance"
    IMPORT = "import"


class EventPayload(BaseModel):
    """Base of every event payload: the event's name, producer and major version."""

    model_config = ConfigDict(extra="allow", frozen=True)

    PRODUCER: ClassVar[str]
    EVENT_NAME: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @classmethod
    def routing_key(cls) -> str:
        return f"{cls.PRODUCER}.{cls.EVENT_NAME}.v{cls.VERSION}"

    @classmethod
    def ce_type(cls) -> str:
        return f"{CE_TYPE_PREFIX}{cls.EVENT_NAME}.v{cls.VERSION}"

    @classmethod
    def ce_source(cls) -> str:
        return f"/dx/{cls.PRODUCER}"


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# ---- nomination -------------------------------------------------------------------------------


class DepartmentEntry(_Part):
    code: str
    name: str
    bureau: str
    active: bool = True


class DepartmentsImported(EventPayload):
    PRODUCER: ClassVar[str] = "nomination"
    EVENT_NAME: ClassVar[str] = "DepartmentsImported"

    fiscal_year: int
    departments: list[DepartmentEntry] = Field(description="departments added or changed by the import")
    removed_codes: list[str] = Field(default_factory=list)
    total: int = Field(0, description="number of departments in the fiscal year after the import")
    order: list[str] = Field(
        default_factory=list,
        description="every department code of the imported list, in the list's (the organisation's) order",
    )


class StaffEntry(_Part):
    staff_id: str
    department_code: str
    is_manager: bool = False


class StaffImported(EventPayload):
    """A roster import; people are named by staff id only (no personal names on the bus)."""

    PRODUCER: ClassVar[str] = "nomination"
    EVENT_NAME: ClassVar[str] = "StaffImported"

    fiscal_year: int
    staff: list[StaffEntry] = Field(description="staff added or changed by the import")
    removed_staff_ids: list[str] = Field(default_factory=list)
    total: int = Field(0, description="roster size of the fiscal year after the import")


class TraineeNominated(EventPayload):
    PRODUCER: ClassVar[str] = "nomination"
    EVENT_NAME: ClassVar[str] = "TraineeNominated"

    nomination_id: str
    staff_id: str
    department_code: str
    fiscal_year: int
    slot: Slot
    nominated_at: datetime | None = None


class NominationWithdrawn(EventPayload):
    PRODUCER: ClassVar[str] = "nomination"
    EVENT_NAME: ClassVar[str] = "NominationWithdrawn"

    nomination_id: str
    staff_id: str
    fiscal_year: int
    reason: str
    department_code: str | None = None
    slot: Slot | None = None
    withdrawn_at: datetime | None = None


# ---- training ---------------------------------------------------------------------------------


class CurriculumPublished(EventPayload):
    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "CurriculumPublished"

    fiscal_year: int
    stage: int = Field(ge=1, le=5)
    session_ids: list[str] = Field(description="the required sessions of the stage in that fiscal year")
    revision: int = Field(1, ge=1, description="increases each time the curriculum changes")


class SessionScheduled(EventPayload):
    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "SessionScheduled"

    session_id: str
    fiscal_year: int
    method: Method
    audience: Audience
    stage: int | None = Field(None, ge=1, le=5, description="for audience `promoter`")
    title: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    capacity: int | None = None
    move_on: MoveOn = MoveOn.COMPLETED


class SessionCompleted(EventPayload):
    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "SessionCompleted"

    completion_id: str
    session_id: str
    staff_id: str
    fiscal_year: int = Field(description="from occurred_at, in Japan time")
    method: Method
    occurred_at: datetime
    recorded_at: datetime
    source: CompletionSource
    success: bool | None = None
    score: float | None = None


class CompletionWaived(EventPayload):
    """A completion recorded by an office's decision; it counts as met and is shown as waived."""

    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "CompletionWaived"

    waiver_id: str
    session_id: str
    staff_id: str
    fiscal_year: int
    actor: str
    reason: str
    recorded_at: datetime | None = None


class CompletionUnmatched(EventPayload):
    """A completion that names an unknown session or person: stored by training, reported, not dropped."""

    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "CompletionUnmatched"

    unmatched_id: str
    reason: str
    session_ref: str | None = None
    staff_id: str | None = None
    received_at: datetime | None = None


class CompletionRematched(EventPayload):
    """An unmatched completion was resolved: matched later, once its session or person became known (or
    an office matched it by hand), or dismissed by an office with its reason."""

    PRODUCER: ClassVar[str] = "training"
    EVENT_NAME: ClassVar[str] = "CompletionRematched"

    unmatched_id: str
    resolution: str = Field(description="completed, already_completed, not_met, or dismissed (by an office)")
    completion_id: str | None = Field(None, description="the SessionCompleted it produced, if any")
    session_id: str | None = None
    staff_id: str | None = None
    resolved_at: datetime | None = None
    actor: str | None = Field(None, description="the office's token subject, when an office resolved it by hand")
    reason: str | None = Field(None, description="why an office dismissed it")


# ---- progression ------------------------------------------------------------------------------


class StageAdvanced(EventPayload):
    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "StageAdvanced"

    staff_id: str
    fiscal_year: int
    from_stage: int = Field(ge=0, le=5, description="0 = newly entering")
    to_stage: int = Field(ge=1, le=5)
    rule_version: str
    evidence: list[str] = Field(default_factory=list, description="ids of the events that decided it")
    corrects: str | None = Field(None, description="id of an earlier decision this one replaces")


class StageRepeated(EventPayload):
    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "StageRepeated"

    staff_id: str
    fiscal_year: int
    stage: int = Field(ge=1, le=5)
    reason: str
    rule_version: str = ""
    evidence: list[str] = Field(default_factory=list)
    corrects: str | None = None


class StageCompleted(EventPayload):
    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "StageCompleted"

    staff_id: str
    fiscal_year: int
    stage: int = Field(ge=1, le=5)
    completed_at: datetime
    rule_version: str = ""
    evidence: list[str] = Field(default_factory=list)
    decision: str | None = Field(
        None, description="id of the stage decision (StageAdvanced/StageRepeated) this completes"
    )


class EnrollmentCancelled(EventPayload):
    """A trainee-year was undone by the withdrawal of its nomination (P7), and by nothing else."""

    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "EnrollmentCancelled"

    staff_id: str
    fiscal_year: int
    stage: int = Field(ge=1, le=5)
    reason: str = ""
    evidence: list[str] = Field(default_factory=list)
    corrects: str | None = None


class DecisionRetracted(EventPayload):
    """A provisional decision (StageAdvanced/StageRepeated) no longer holds: the trainee-year waits again
    for an earlier year's outcome (P6). Not a withdrawal: the year stays a trainee-year, undecided."""

    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "DecisionRetracted"

    staff_id: str
    fiscal_year: int
    retracts: str = Field(description="id of the StageAdvanced/StageRepeated event that no longer holds")
    reason: str = Field(description="awaiting_earlier_year: the year waits again for an earlier year's outcome")
    stage: int | None = Field(None, ge=1, le=5, description="the stage the retracted decision had named")
    awaiting_fiscal_year: int | None = Field(None, description="the open earlier year whose outcome is awaited")
    rule_version: str = ""
    evidence: list[str] = Field(default_factory=list)


class FiscalYearClosed(EventPayload):
    PRODUCER: ClassVar[str] = "progression"
    EVENT_NAME: ClassVar[str] = "FiscalYearClosed"

    fiscal_year: int
    closed_at: datetime | None = None
    actor: str | None = None
    early_close: bool = Field(
        False, description="closed before the fiscal year ended (1 April after it, JST), by the DX office"
    )
    reason: str | None = Field(None, description="why the year was closed early (required for an early close)")


ALL_EVENTS: tuple[type[EventPayload], ...] = (
    DepartmentsImported,
    StaffImported,
    TraineeNominated,
    NominationWithdrawn,
    CurriculumPublished,
    SessionScheduled,
    SessionCompleted,
    CompletionWaived,
    CompletionUnmatched,
    CompletionRematched,
    StageAdvanced,
    StageRepeated,
    StageCompleted,
    EnrollmentCancelled,
    DecisionRetracted,
    FiscalYearClosed,
)

_BY_TYPE: dict[str, type[EventPayload]] = {model.ce_type(): model for model in ALL_EVENTS}
_BY_ROUTING_KEY: dict[str, type[EventPayload]] = {model.routing_key(): model for model in ALL_EVENTS}


def by_type(ce_type: str) -> type[EventPayload] | None:
    return _BY_TYPE.get(ce_type)


def by_routing_key(routing_key: str) -> type[EventPayload] | None:
    return _BY_ROUTING_KEY.get(routing_key)


def produced_by(service: str) -> tuple[type[EventPayload], ...]:
    return tuple(model for model in ALL_EVENTS if service == model.PRODUCER)
