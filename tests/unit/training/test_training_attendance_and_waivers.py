"""Attendance of classroom and hands-on sessions, backfilled completions, and waivers by the offices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dx_shared.calendar import JST
from dx_shared.contracts import Audience, CompletionSource, Method
from dx_shared.roles import Role
from training.domain import (
    ActorRequired,
    AttendanceNotApplicable,
    CapacityExceeded,
    Completion,
    ReasonRequired,
    Session,
    UnknownSession,
    UnknownStaff,
    WaiverNotPermitted,
    attendance_time,
    import_completion,
    take_attendance,
    waive_completion,
)

NOW = datetime(2025, 7, 1, 3, 0, tzinfo=UTC)
CLASSROOM = Session(
    "C1",
    2025,
    Method.CLASSROOM,
    Audience.PROMOTER,
    "データ活用演習",
    stage=1,
    capacity=3,
    ends_at=datetime(2025, 6, 30, 17, 0, tzinfo=JST),
)
E_LEARNING = Session("E1", 2025, Method.E_LEARNING, Audience.ALL_STAFF, "情報セキュリティ")


def attend(
    staff_ids: list[str], already: set[str] | None = None, off_roster: set[str] | None = None
) -> list[Completion]:
    return take_attendance(
        CLASSROOM,
        staff_ids,
        already_attended=frozenset(already or set()),
        not_on_roster=frozenset(off_roster or set()),
        occurred_at=attendance_time(CLASSROOM, None, NOW),
        recorded_at=NOW,
    )


def test_attendance_yields_one_attendance_completion_per_person() -> None:
    completions = attend(["A1", "A2", "A1"])
    assert [(c.staff_id, c.source, c.fiscal_year) for c in completions] == [
        ("A1", CompletionSource.ATTENDANCE, 2025),
        ("A2", CompletionSource.ATTENDANCE, 2025),
    ]


def test_attendance_happened_at_the_end_of_the_session_unless_stated() -> None:
    assert attend(["A1"])[0].occurred_at == CLASSROOM.ends_at


def test_recording_the_same_attendance_again_yields_the_same_completion_id() -> None:
    assert attend(["A1"])[0].completion_id == attend(["A1"])[0].completion_id


def test_people_already_recorded_are_not_counted_again() -> None:
    assert [c.staff_id for c in attend(["A1", "A2"], already={"A1"})] == ["A2"]


def test_attendance_beyond_the_capacity_is_refused_as_a_whole() -> None:
    with pytest.raises(CapacityExceeded):
        attend(["A3", "A4"], already={"A1", "A2"})


def test_attendance_up_to_the_capacity_is_accepted() -> None:
    assert len(attend(["A3"], already={"A1", "A2"})) == 1


def test_attendance_for_an_unknown_session_is_refused() -> None:
    with pytest.raises(UnknownSession):
        take_attendance(
            None, ["A1"], already_attended=frozenset(), not_on_roster=frozenset(), occurred_at=NOW, recorded_at=NOW
        )


def test_attendance_is_not_taken_for_e_learning() -> None:
    with pytest.raises(AttendanceNotApplicable):
        take_attendance(
            E_LEARNING,
            ["A1"],
            already_attended=frozenset(),
            not_on_roster=frozenset(),
            occurred_at=NOW,
            recorded_at=NOW,
        )


def test_attendance_of_someone_not_on_the_roster_is_refused() -> None:
    with pytest.raises(UnknownStaff):
        attend(["A1", "ZZ"], off_roster={"ZZ"})


def test_an_imported_completion_takes_its_fiscal_year_from_japan_time() -> None:
    completion = import_completion(E_LEARNING, "A1", datetime(2025, 3, 31, 15, 30, tzinfo=UTC), NOW)
    assert (completion.fiscal_year, completion.source) == (2025, CompletionSource.IMPORT)


def test_the_same_imported_row_yields_the_same_completion_id() -> None:
    moment = datetime(2025, 5, 1, tzinfo=JST)
    assert (
        import_completion(E_LEARNING, "A1", moment, NOW).completion_id
        == import_completion(E_LEARNING, "A1", moment, datetime.now(UTC)).completion_id
    )


@pytest.mark.parametrize("role", [Role.DX_OFFICE, Role.HR_OFFICE])
def test_the_offices_may_waive_a_completion_with_actor_and_reason(role: Role) -> None:
    waiver = waive_completion(role, E_LEARNING, "A1", actor="dx-office-01", reason="前年度修了済", recorded_at=NOW)
    assert (waiver.fiscal_year, waiver.actor, waiver.reason) == (2025, "dx-office-01", "前年度修了済")


@pytest.mark.parametrize("role", [Role.DEPARTMENT, Role.TRAINEE, Role.INFO_POLICY])
def test_departments_trainees_and_the_systems_office_may_not_waive(role: Role) -> None:
    with pytest.raises(WaiverNotPermitted):
        waive_completion(role, E_LEARNING, "A1", actor="x", reason="y", recorded_at=NOW)


def test_a_waiver_without_actor_is_refused() -> None:
    with pytest.raises(ActorRequired):
        waive_completion(Role.HR_OFFICE, E_LEARNING, "A1", actor=" ", reason="病気療養", recorded_at=NOW)


def test_a_waiver_without_reason_is_refused() -> None:
    with pytest.raises(ReasonRequired):
        waive_completion(Role.HR_OFFICE, E_LEARNING, "A1", actor="hr-01", reason="", recorded_at=NOW)


def test_a_waiver_of_an_unknown_session_is_refused() -> None:
    with pytest.raises(UnknownSession):
        waive_completion(Role.HR_OFFICE, None, "A1", actor="hr-01", reason="病気療養", recorded_at=NOW)


def test_an_imported_completion_of_someone_not_on_that_years_roster_is_refused() -> None:
    with pytest.raises(UnknownStaff):
        import_completion(E_LEARNING, "ZZ", datetime(2025, 5, 1, tzinfo=JST), NOW, on_roster=False)
