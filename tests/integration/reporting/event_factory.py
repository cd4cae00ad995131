"""Events as the other services would publish them, and feeding them to a running reporting service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx

from dx_shared import contracts as c
from dx_shared.envelope import CloudEvent, new_event
from dx_shared.settings import Settings
from tests.support.bus import publish_events

_clock = count()
BASE_TIME = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


def event(payload: c.EventPayload, *, at: datetime | None = None, subject: str | None = None) -> CloudEvent:
    """A CloudEvent whose time increases with each call unless given, so 'latest' is well defined."""
    moment = at or BASE_TIME + timedelta(minutes=next(_clock))
    return new_event(payload, subject=subject or getattr(payload, "staff_id", None), time=moment)


async def feed(settings: Settings, client: httpx.AsyncClient, events: Sequence[CloudEvent], *,
               copies: int = 1, timeout: float = 20.0) -> None:
    """Publishes the events (each `copies` times in a row) and waits until every distinct one is projected."""
    before = (await client.get("/api/v1/reports/pipeline")).json()["events_total"]
    await publish_events(settings, [item for item in events for _ in range(copies)])
    expected = before + len({item.id for item in events})
    deadline = time.monotonic() + timeout
    while True:
        total = (await client.get("/api/v1/reports/pipeline")).json()["events_total"]
        if total >= expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"projected {total} of {expected} events")
        await asyncio.sleep(0.1)


def departments(fiscal_year: int, *entries: tuple[str, str, str]) -> CloudEvent:
    return event(c.DepartmentsImported(
        fiscal_year=fiscal_year,
        departments=[c.DepartmentEntry(code=code, name=name, bureau=bureau) for code, name, bureau in entries],
        total=len(entries), order=[code for code, _, _ in entries],
    ))


def roster(fiscal_year: int, *entries: tuple[str, str, bool], removed: Sequence[str] = ()) -> CloudEvent:
    return event(c.StaffImported(
        fiscal_year=fiscal_year,
        staff=[c.StaffEntry(staff_id=s, department_code=d, is_manager=m) for s, d, m in entries],
        removed_staff_ids=list(removed), total=len(entries),
    ))


def nominated(nomination_id: str, staff_id: str, department: str, fiscal_year: int, slot: str) -> CloudEvent:
    return event(c.TraineeNominated(nomination_id=nomination_id, staff_id=staff_id, department_code=department,
                                    fiscal_year=fiscal_year, slot=c.Slot(slot)))


def withdrawn(nomination_id: str, staff_id: str, fiscal_year: int) -> CloudEvent:
    return event(c.NominationWithdrawn(nomination_id=nomination_id, staff_id=staff_id, fiscal_year=fiscal_year,
                                       reason="本人都合"))


def advanced(staff_id: str, fiscal_year: int, from_stage: int, to_stage: int, *, corrects: str | None = None,
             **kw: Any) -> CloudEvent:
    return event(c.StageAdvanced(staff_id=staff_id, fiscal_year=fiscal_year, from_stage=from_stage,
                                 to_stage=to_stage, rule_version="1", corrects=corrects), **kw)


def repeated(staff_id: str, fiscal_year: int, stage: int, *, corrects: str | None = None, **kw: Any) -> CloudEvent:
    return event(c.StageRepeated(staff_id=staff_id, fiscal_year=fiscal_year, stage=stage, reason="not completed",
                                 corrects=corrects), **kw)


def completed_stage(staff_id: str, fiscal_year: int, stage: int, *, decision: str | None = None) -> CloudEvent:
    """A StageCompleted; `decision` is the id of the StageAdvanced/StageRepeated it completes."""
    return event(c.StageCompleted(staff_id=staff_id, fiscal_year=fiscal_year, stage=stage,
                                  completed_at=datetime(fiscal_year + 1, 2, 1, tzinfo=UTC), decision=decision))


def cancelled(staff_id: str, fiscal_year: int, stage: int, **kw: Any) -> CloudEvent:
    return event(c.EnrollmentCancelled(staff_id=staff_id, fiscal_year=fiscal_year, stage=stage), **kw)


def retracted(staff_id: str, fiscal_year: int, retracts: str, **kw: Any) -> CloudEvent:
    return event(c.DecisionRetracted(staff_id=staff_id, fiscal_year=fiscal_year, retracts=retracts,
                                     reason="awaiting_earlier_year"), **kw)


def session(session_id: str, fiscal_year: int, audience: str, method: str = "e_learning",
            stage: int | None = None) -> CloudEvent:
    return event(c.SessionScheduled(session_id=session_id, fiscal_year=fiscal_year, method=c.Method(method),
                                    audience=c.Audience(audience), stage=stage, title=f"研修 {session_id}"))


def session_completed(completion_id: str, session_id: str, staff_id: str, fiscal_year: int,
                      recorded_at: datetime | None = None, method: str = "e_learning") -> CloudEvent:
    occurred = datetime(fiscal_year, 6, 1, tzinfo=UTC)
    return event(c.SessionCompleted(
        completion_id=completion_id, session_id=session_id, staff_id=staff_id, fiscal_year=fiscal_year,
        method=c.Method(method), occurred_at=occurred, recorded_at=recorded_at or occurred,
        source=c.CompletionSource.WEBHOOK,
    ))


def waived(waiver_id: str, session_id: str, staff_id: str, fiscal_year: int) -> CloudEvent:
    return event(c.CompletionWaived(waiver_id=waiver_id, session_id=session_id, staff_id=staff_id,
                                    fiscal_year=fiscal_year, actor="hr-office", reason="既修得"))


def closed(fiscal_year: int, closed_at: datetime) -> CloudEvent:
    return event(c.FiscalYearClosed(fiscal_year=fiscal_year, closed_at=closed_at))


def curriculum(fiscal_year: int, stage: int, session_ids: Sequence[str], revision: int = 1) -> CloudEvent:
    return event(c.CurriculumPublished(fiscal_year=fiscal_year, stage=stage, session_ids=list(session_ids),
                                       revision=revision))


def unmatched(unmatched_id: str, reason: str = "unknown session") -> CloudEvent:
    return event(c.CompletionUnmatched(unmatched_id=unmatched_id, reason=reason, session_ref="LMS-404",
                                       staff_id="S999"))


def rematched(unmatched_id: str, resolution: str = "completed") -> CloudEvent:
    return event(c.CompletionRematched(unmatched_id=unmatched_id, resolution=resolution, completion_id="C-" + unmatched_id,
                                       staff_id="S999"))
