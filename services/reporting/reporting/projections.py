"""Applying one consumed event to the projections: load the rows it touches, change them, move the tallies.

The same code serves the live consumer and the rebuild; each function is translate → load → change
(pure, `reporting.domain`) → save rows and the tally difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from dx_shared import contracts as c
from dx_shared.envelope import CloudEvent
from reporting.domain import (
    Attendance,
    BaselinePerson,
    Decision,
    Department,
    StageCompletion,
    TraineeYear,
    attendance_contributions,
    baseline_contributions,
    baseline_session_shift,
    is_late,
    merge_differences,
    nomination_contributions,
    tally_difference,
    trainee_department,
    trainee_year_contributions,
    with_completion,
    with_decision,
    with_department,
    with_sessions_shifted,
)
from reporting.repository import ProjectionStore

Apply = Callable[[ProjectionStore, CloudEvent, Any], Awaitable[None]]


async def apply_event(
    store: ProjectionStore, event: CloudEvent, payload: c.EventPayload, received_at: datetime
) -> None:
    """Projects an event of the log unless this schema has projected it already (the rebuild)."""
    if await store.mark_projected(event.id):
        await project(store, event, payload, received_at)


async def project(store: ProjectionStore, event: CloudEvent, payload: c.EventPayload, received_at: datetime) -> None:
    """Projects an event already marked as projected in this schema."""
    apply = _APPLY.get(type(payload))
    if apply is not None:
        await apply(store, event, payload)
    await store.finish_event(payload.routing_key(), event.time, received_at)


Scope = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Logged:
    """An event of a batch, logged as received, to project; `scope` makes it current while it is."""

    event: CloudEvent
    payload: c.EventPayload
    received_at: datetime
    scope: Scope


async def project_batch(store: ProjectionStore, items: Sequence[Logged]) -> None:
    """Projects a batch of logged events with the same outcome as `project` one after the other.

    The projections do not depend on the order events arrive in (they must not: the services publish
    independently), so a batch is projected by kind: the decisions and completions, most of the traffic,
    with a few set-based statements for the whole batch (lock every row touched in key order, read,
    change each in the batch's order with the pure functions, write back), any other event on its own;
    then every tally change and stream counter in one statement.
    """
    decisions = [item for item in items if type(item.payload) in _DECISIONS]
    completions = [item for item in items if type(item.payload) in _COMPLETIONS]
    for item in items:
        if type(item.payload) in _DECISIONS or type(item.payload) in _COMPLETIONS:
            continue
        apply = _APPLY.get(type(item.payload))
        if apply is not None:
            with item.scope():
                await apply(store, item.event, item.payload)
    if completions:
        await _record_completions(store, completions)
    if decisions:
        await _change_trainee_years(store, decisions)
    await store.finish_events(
        [(item.payload.routing_key(), item.event.time, item.received_at) for item in items]
    )


def _trainee_year_change(event: CloudEvent, payload: Any) -> tuple[tuple[str, int], Callable[[TraineeYear], TraineeYear]]:
    """The trainee-year a decision event changes, and how (what `_stage_advanced` and the others do)."""
    key = (payload.staff_id, payload.fiscal_year)
    if isinstance(payload, c.StageCompleted):
        completion = StageCompletion(payload.stage, payload.completed_at, payload.decision)
        return key, lambda year: with_completion(year, completion)
    if isinstance(payload, c.StageAdvanced):
        decision = Decision("advanced", payload.to_stage, payload.from_stage, event.time, event.id, payload.corrects)
    elif isinstance(payload, c.StageRepeated):
        decision = Decision("repeated", payload.stage, None, event.time, event.id, payload.corrects)
    elif isinstance(payload, c.EnrollmentCancelled):
        decision = Decision("cancelled", payload.stage, None, event.time, event.id, payload.corrects)
    else:
        decision = Decision("retracted", payload.stage or 0, None, event.time, event.id, payload.retracts)
    return key, lambda year: with_decision(year, decision)


async def _change_trainee_years(store: ProjectionStore, items: Sequence[Logged]) -> None:
    """`_change_trainee_year` for every decision event of a batch: lock, read, change in order, write."""
    changes = [_trainee_year_change(item.event, item.payload) for item in items]
    keys = sorted({key for key, _ in changes})
    before = await store.lock_trainee_years(keys)
    nominations = await store.nominations_of_trainee_years(keys)
    current = dict(before)
    for key, change in changes:
        year = current[key]
        after = with_department(change(year), trainee_department(nominations[key]))
        if after != year:
            store.apply_tallies(tally_difference(trainee_year_contributions(year), trainee_year_contributions(after)))
            current[key] = after
    changed = [current[key] for key in keys if current[key] != before[key]]
    if changed:
        await store.save_trainee_years(changed)


def _completion_change(item: Logged) -> tuple[dict[str, Any], Callable[[Attendance], Attendance]]:
    event, payload = item.event, item.payload
    if isinstance(payload, c.SessionCompleted):
        return _session_completion_record(payload), _one_more_completion
    assert isinstance(payload, c.CompletionWaived)
    return _waiver_record(event, payload), _one_more_waiver


async def _record_completions(store: ProjectionStore, items: Sequence[Logged]) -> None:
    """`_record_completion` for every completion and waiver of a batch, with the same outcome."""
    records = [(item, *_completion_change(item)) for item in items]
    await store.lock_for_completions(
        (record["session_id"] for _, record, _ in records), (record["fiscal_year"] for _, record, _ in records)
    )
    contexts = await store.add_completion_records([record for _, record, _ in records])
    fresh = []
    for item, record, add in records:
        context = contexts.pop(record["record_id"], None)  # a record id twice in a batch counts once
        if context is not None:
            fresh.append((item, record, add, context))
    if not fresh:
        return
    for item, record, _, context in fresh:
        if context.closed_at is not None and is_late(record["recorded_at"], context.closed_at):
            with item.scope():
                await store.add_late_completion(record, context.closed_at)
    attendances = await store.lock_attendances(
        [(record["session_id"], record["staff_id"], record["fiscal_year"]) for _, record, _, _ in fresh]
    )
    current = {key: attendance for key, (attendance, _) in attendances.items()}
    shifts = []
    for item, record, add, context in fresh:
        key = (record["session_id"], record["staff_id"])
        before = current[key]
        after = add(before)
        current[key] = after
        store.apply_tallies(tally_difference(attendance_contributions(before), attendance_contributions(after)))
        if after.met and not before.met:
            shift = baseline_session_shift(context.audience)
            if shift != (0, 0):
                shifts.append((item, attendances[key][1], record["staff_id"], shift))
    await store.save_attendances([current[key] for key in sorted(current) if current[key] != attendances[key][0]])
    for item, fiscal_year, staff_id, shift in shifts:
        with item.scope():
            await _change_baseline_people(store, fiscal_year, [staff_id], partial(_shifted, shift=shift))


def _shifted(person: BaselinePerson, shift: tuple[int, int]) -> BaselinePerson:
    return with_sessions_shifted(person, shift)


# ---- trainee-years -----------------------------------------------------------------------------


async def _change_trainee_year(
    store: ProjectionStore, staff_id: str, fiscal_year: int, change: Callable[[TraineeYear], TraineeYear]
) -> None:
    before = await store.lock_trainee_year(staff_id, fiscal_year)
    department = trainee_department(await store.nominations_of(staff_id, fiscal_year))
    after = with_department(change(before), department)
    if after != before:
        await store.save_trainee_year(after)
        store.apply_tallies(
            tally_difference(trainee_year_contributions(before), trainee_year_contributions(after))
        )


async def _stage_advanced(store: ProjectionStore, event: CloudEvent, payload: c.StageAdvanced) -> None:
    decision = Decision("advanced", payload.to_stage, payload.from_stage, event.time, event.id, payload.corrects)
    await _change_trainee_year(
        store, payload.staff_id, payload.fiscal_year, lambda year: with_decision(year, decision)
    )


async def _stage_repeated(store: ProjectionStore, event: CloudEvent, payload: c.StageRepeated) -> None:
    decision = Decision("repeated", payload.stage, None, event.time, event.id, payload.corrects)
    await _change_trainee_year(
        store, payload.staff_id, payload.fiscal_year, lambda year: with_decision(year, decision)
    )


async def _enrollment_cancelled(
    store: ProjectionStore, event: CloudEvent, payload: c.EnrollmentCancelled
) -> None:
    decision = Decision("cancelled", payload.stage, None, event.time, event.id, payload.corrects)
    await _change_trainee_year(
        store, payload.staff_id, payload.fiscal_year, lambda year: with_decision(year, decision)
    )


async def _decision_retracted(store: ProjectionStore, event: CloudEvent, payload: c.DecisionRetracted) -> None:
    decision = Decision("retracted", payload.stage or 0, None, event.time, event.id, payload.retracts)
    await _change_trainee_year(
        store, payload.staff_id, payload.fiscal_year, lambda year: with_decision(year, decision)
    )


async def _stage_completed(store: ProjectionStore, event: CloudEvent, payload: c.StageCompleted) -> None:
    completion = StageCompletion(payload.stage, payload.completed_at, payload.decision)
    await _change_trainee_year(
        store, payload.staff_id, payload.fiscal_year, lambda year: with_completion(year, completion)
    )


# ---- nominations -------------------------------------------------------------------------------


async def _change_nomination(
    store: ProjectionStore, nomination_id: str, staff_id: str, fiscal_year: int, fields: dict[str, Any]
) -> None:
    before = await store.lock_nomination(nomination_id, staff_id, fiscal_year)
    known = {key: value for key, value in fields.items() if value is not None}
    after = replace(before, **known)
    if after != before:
        await store.save_nomination(after)
        store.apply_tallies(
            tally_difference(nomination_contributions(before), nomination_contributions(after))
        )
    await _change_trainee_year(store, staff_id, fiscal_year, lambda year: year)


async def _trainee_nominated(store: ProjectionStore, event: CloudEvent, payload: c.TraineeNominated) -> None:
    await _change_nomination(
        store, payload.nomination_id, payload.staff_id, payload.fiscal_year,
        {"department_code": payload.department_code, "slot": payload.slot.value, "nominated": True},
    )


async def _nomination_withdrawn(
    store: ProjectionStore, event: CloudEvent, payload: c.NominationWithdrawn
) -> None:
    await _change_nomination(
        store, payload.nomination_id, payload.staff_id, payload.fiscal_year,
        {
            "department_code": payload.department_code,
            "slot": payload.slot.value if payload.slot else None,
            "withdrawn": True,
            "withdrawn_at": payload.withdrawn_at or event.time,
        },
    )


# ---- organisation and baseline ------------------------------------------------------------------


async def _departments_imported(
    store: ProjectionStore, event: CloudEvent, payload: c.DepartmentsImported
) -> None:
    await store.save_departments(
        payload.fiscal_year,
        [Department(d.code, d.name, d.bureau, d.active) for d in payload.departments],
    )
    await store.remove_departments(payload.fiscal_year, payload.removed_codes)
    if payload.order:
        await store.place_departments(payload.fiscal_year, payload.order)


async def _change_baseline_people(
    store: ProjectionStore,
    fiscal_year: int,
    staff_ids: Iterable[str],
    change: Callable[[BaselinePerson], BaselinePerson],
) -> None:
    people = await store.lock_baseline_people(fiscal_year, staff_ids)
    changed = [(person, change(person)) for person in people.values()]
    changed = [(before, after) for before, after in changed if after != before]
    if not changed:
        return
    await store.save_baseline_people([after for _, after in changed])
    store.apply_tallies(merge_differences(
        tally_difference(baseline_contributions(before), baseline_contributions(after))
        for before, after in changed
    ))


async def _staff_imported(store: ProjectionStore, event: CloudEvent, payload: c.StaffImported) -> None:
    entries = {entry.staff_id: entry for entry in payload.staff}

    def on_roster(person: BaselinePerson) -> BaselinePerson:
        entry = entries[person.staff_id]
        return BaselinePerson(
            person.fiscal_year, person.staff_id, True, entry.department_code, entry.is_manager,
            person.all_staff_sessions, person.managers_sessions,
        )

    def off_roster(person: BaselinePerson) -> BaselinePerson:
        return BaselinePerson(
            person.fiscal_year, person.staff_id, False, None, False,
            person.all_staff_sessions, person.managers_sessions,
        )

    await _change_baseline_people(store, payload.fiscal_year, entries, on_roster)
    removed = [staff_id for staff_id in payload.removed_staff_ids if staff_id not in entries]
    await _change_baseline_people(store, payload.fiscal_year, removed, off_roster)


# ---- sessions and completions -------------------------------------------------------------------


async def _session_scheduled(store: ProjectionStore, event: CloudEvent, payload: c.SessionScheduled) -> None:
    await store.lock_session_key(payload.session_id)
    previous = await store.save_session({
        "session_id": payload.session_id, "fiscal_year": payload.fiscal_year, "method": payload.method.value,
        "audience": payload.audience.value, "stage": payload.stage, "title": payload.title,
        "starts_at": payload.starts_at, "capacity": payload.capacity,
    })
    if previous == payload.audience.value:
        return
    undo = baseline_session_shift(previous)
    redo = baseline_session_shift(payload.audience.value)
    for fiscal_year, staff_ids in (await store.attendees_of(payload.session_id)).items():
        await _change_baseline_people(
            store, fiscal_year, staff_ids,
            lambda person: with_sessions_shifted(with_sessions_shifted(person, undo, -1), redo),
        )


async def _record_completion(
    store: ProjectionStore, record: dict[str, Any], add: Callable[[Attendance], Attendance]
) -> None:
    await store.lock_for_completion(record["session_id"], record["fiscal_year"])
    context = await store.add_completion_record(record)
    if context is None:
        return
    if context.closed_at is not None and is_late(record["recorded_at"], context.closed_at):
        await store.add_late_completion(record, context.closed_at)
    before, fiscal_year = await store.lock_attendance(record["session_id"], record["staff_id"], record["fiscal_year"])
    after = add(before)
    await store.save_attendance(after)
    store.apply_tallies(tally_difference(attendance_contributions(before), attendance_contributions(after)))
    if after.met and not before.met:
        shift = baseline_session_shift(context.audience)
        if shift != (0, 0):
            await _change_baseline_people(
                store, fiscal_year, [record["staff_id"]], lambda person: with_sessions_shifted(person, shift)
            )


def _session_completion_record(payload: c.SessionCompleted) -> dict[str, Any]:
    return {
        "record_id": payload.completion_id, "kind": "completion", "session_id": payload.session_id,
        "staff_id": payload.staff_id, "fiscal_year": payload.fiscal_year, "method": payload.method.value,
        "source": payload.source.value, "occurred_at": payload.occurred_at, "recorded_at": payload.recorded_at,
    }


def _waiver_record(event: CloudEvent, payload: c.CompletionWaived) -> dict[str, Any]:
    return {
        "record_id": payload.waiver_id, "kind": "waiver", "session_id": payload.session_id,
        "staff_id": payload.staff_id, "fiscal_year": payload.fiscal_year, "method": None,
        "source": "waiver", "occurred_at": None, "recorded_at": payload.recorded_at or event.time,
    }


def _one_more_completion(attendance: Attendance) -> Attendance:
    return Attendance(attendance.session_id, attendance.staff_id, attendance.completions + 1, attendance.waivers)


def _one_more_waiver(attendance: Attendance) -> Attendance:
    return Attendance(attendance.session_id, attendance.staff_id, attendance.completions, attendance.waivers + 1)


async def _session_completed(store: ProjectionStore, event: CloudEvent, payload: c.SessionCompleted) -> None:
    await _record_completion(store, _session_completion_record(payload), _one_more_completion)


async def _completion_waived(store: ProjectionStore, event: CloudEvent, payload: c.CompletionWaived) -> None:
    await _record_completion(store, _waiver_record(event, payload), _one_more_waiver)


async def _curriculum_published(
    store: ProjectionStore, event: CloudEvent, payload: c.CurriculumPublished
) -> None:
    await store.save_curriculum(payload.fiscal_year, payload.stage, payload.revision, list(payload.session_ids))


async def _fiscal_year_closed(store: ProjectionStore, event: CloudEvent, payload: c.FiscalYearClosed) -> None:
    await store.lock_closure(payload.fiscal_year)
    closed_at = await store.close_fiscal_year(payload.fiscal_year, payload.closed_at or event.time)
    await store.mark_late_completions(payload.fiscal_year, closed_at)


async def _completion_unmatched(
    store: ProjectionStore, event: CloudEvent, payload: c.CompletionUnmatched
) -> None:
    await store.add_unmatched({
        "unmatched_id": payload.unmatched_id, "reason": payload.reason, "session_ref": payload.session_ref,
        "staff_id": payload.staff_id, "received_at": payload.received_at or event.time,
    })


async def _completion_rematched(
    store: ProjectionStore, event: CloudEvent, payload: c.CompletionRematched
) -> None:
    await store.resolve_unmatched({
        "unmatched_id": payload.unmatched_id, "resolution": payload.resolution,
        "completion_id": payload.completion_id, "resolved_at": payload.resolved_at or event.time,
    })


_APPLY: dict[type[c.EventPayload], Apply] = {
    c.DepartmentsImported: _departments_imported,
    c.StaffImported: _staff_imported,
    c.TraineeNominated: _trainee_nominated,
    c.NominationWithdrawn: _nomination_withdrawn,
    c.CurriculumPublished: _curriculum_published,
    c.SessionScheduled: _session_scheduled,
    c.SessionCompleted: _session_completed,
    c.CompletionWaived: _completion_waived,
    c.CompletionUnmatched: _completion_unmatched,
    c.CompletionRematched: _completion_rematched,
    c.StageAdvanced: _stage_advanced,
    c.StageRepeated: _stage_repeated,
    c.StageCompleted: _stage_completed,
    c.EnrollmentCancelled: _enrollment_cancelled,
    c.DecisionRetracted: _decision_retracted,
    c.FiscalYearClosed: _fiscal_year_closed,
}

_DECISIONS: frozenset[type[c.EventPayload]] = frozenset(
    {c.StageAdvanced, c.StageRepeated, c.StageCompleted, c.EnrollmentCancelled, c.DecisionRetracted}
)
_COMPLETIONS: frozenset[type[c.EventPayload]] = frozenset({c.SessionCompleted, c.CompletionWaived})
