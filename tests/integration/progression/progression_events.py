"""Facts as the nomination and training services publish them, and reading decisions off the bus."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dx_shared import contracts as c
from dx_shared.calendar import JST
from dx_shared.envelope import CloudEvent, deterministic_id, new_event


def at(fiscal_year: int, month: int, day: int = 1) -> datetime:
    return datetime(fiscal_year if month >= 4 else fiscal_year + 1, month, day, 10, tzinfo=JST)


def nominated(staff_id: str, fiscal_year: int, slot: str = "self") -> CloudEvent:
    nomination_id = f"{staff_id}-{fiscal_year}"
    payload = c.TraineeNominated(
        nomination_id=nomination_id,
        staff_id=staff_id,
        department_code="0101",
        fiscal_year=fiscal_year,
        slot=c.Slot(slot),
    )
    return new_event(payload, subject=staff_id, event_id=deterministic_id("test-nominated", nomination_id))


def withdrawn(staff_id: str, fiscal_year: int) -> CloudEvent:
    nomination_id = f"{staff_id}-{fiscal_year}"
    payload = c.NominationWithdrawn(
        nomination_id=nomination_id,
        staff_id=staff_id,
        fiscal_year=fiscal_year,
        reason="異動のため",
        withdrawn_at=at(fiscal_year, 9),
    )
    return new_event(payload, subject=staff_id, event_id=deterministic_id("test-withdrawn", nomination_id))


def curriculum(fiscal_year: int, stage: int, sessions: list[str], revision: int = 1) -> CloudEvent:
    payload = c.CurriculumPublished(fiscal_year=fiscal_year, stage=stage, session_ids=sessions, revision=revision)
    return new_event(payload, event_id=deterministic_id("test-curriculum", fiscal_year, stage, revision))


def completed(staff_id: str, session_id: str, fiscal_year: int, recorded_at: datetime | None = None) -> CloudEvent:
    occurred = at(fiscal_year, 7)
    payload = c.SessionCompleted(
        completion_id=f"{staff_id}-{session_id}",
        session_id=session_id,
        staff_id=staff_id,
        fiscal_year=fiscal_year,
        method=c.Method.E_LEARNING,
        occurred_at=occurred,
        recorded_at=recorded_at or at(fiscal_year, 7, 2),
        source=c.CompletionSource.WEBHOOK,
    )
    return new_event(payload, subject=staff_id, event_id=deterministic_id("test-completed", staff_id, session_id))


def waived(staff_id: str, session_id: str, fiscal_year: int) -> CloudEvent:
    payload = c.CompletionWaived(
        waiver_id=f"{staff_id}-{session_id}",
        session_id=session_id,
        staff_id=staff_id,
        fiscal_year=fiscal_year,
        actor="jichi-kenshujo",
        reason="前年度に同等の研修を受講済み",
        recorded_at=at(fiscal_year, 8),
    )
    return new_event(payload, subject=staff_id, event_id=deterministic_id("test-waived", staff_id, session_id))


STAGE_EVENTS = {"StageAdvanced", "StageRepeated", "EnrollmentCancelled", "DecisionRetracted"}


def _name(event: CloudEvent) -> str:
    return event.type.removeprefix("jp.aomori.dx.").removesuffix(".v1")


def standing_decisions(events: Iterable[CloudEvent]) -> set[tuple[object, ...]]:
    """The decisions still standing: per trainee-year the stage decision no later one corrects, and the
    StageCompleted attached to it. Cancelled years have none."""
    events = list(events)
    corrected = {e.data.get("corrects") or e.data.get("retracts") for e in events if _name(e) in STAGE_EVENTS}
    heads = [e for e in events if _name(e) in STAGE_EVENTS and e.id not in corrected]
    standing: set[tuple[object, ...]] = set()
    for head in heads:
        data = head.data
        if _name(head) == "StageAdvanced":
            standing.add((data["staff_id"], data["fiscal_year"], "StageAdvanced", data["from_stage"], data["to_stage"]))
        elif _name(head) == "StageRepeated":
            standing.add((data["staff_id"], data["fiscal_year"], "StageRepeated", data["stage"], data["reason"]))
    head_ids = {head.id for head in heads}
    for event in events:
        if _name(event) == "StageCompleted" and event.data.get("decision") in head_ids:
            standing.add((event.data["staff_id"], event.data["fiscal_year"], "StageCompleted", event.data["stage"]))
    return standing
