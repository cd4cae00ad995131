"""What each projected row counts towards, so the tallies equal the facts whatever their order."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import permutations

from reporting.domain import (
    Attendance,
    BaselineCount,
    BaselinePerson,
    Decision,
    DepartmentCount,
    Nomination,
    PlanCount,
    SessionCount,
    StageCompletion,
    TraineeYear,
    attendance_contributions,
    baseline_contributions,
    is_late,
    merge_differences,
    nomination_contributions,
    tally_difference,
    trainee_department,
    trainee_year_contributions,
    trainee_year_status,
    with_completion,
    with_decision,
    year_withdrawn,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 1, tzinfo=UTC)
T2 = datetime(2025, 5, 1, tzinfo=UTC)


def advanced(stage: int, from_stage: int, at: datetime, event_id: str = "e1") -> Decision:
    return Decision("advanced", stage, from_stage, at, event_id)


def test_a_new_promoter_counts_as_entered_and_new_in_stage_one() -> None:
    year = with_decision(TraineeYear("S1", 2024), advanced(1, 0, T0))

    assert trainee_year_contributions(year) == Counter(
        {PlanCount(2024, 1, "entered"): 1, PlanCount(2024, 1, "new"): 1}
    )


def test_the_latest_decision_wins_whatever_order_the_decisions_arrive_in() -> None:
    first = advanced(2, 1, T0, "a")
    corrected = Decision("repeated", 1, None, T1, "b")

    in_order = with_decision(with_decision(TraineeYear("S1", 2025), first), corrected)
    reversed_order = with_decision(with_decision(TraineeYear("S1", 2025), corrected), first)

    assert in_order == reversed_order
    assert in_order.stage == 1
    assert not in_order.is_new


def test_a_cancelled_enrolment_counts_nowhere_in_the_plan() -> None:
    year = with_decision(TraineeYear("S1", 2024), advanced(1, 0, T0))
    cancelled = with_decision(year, Decision("cancelled", 1, None, T1, "c"))

    assert trainee_year_contributions(cancelled) == Counter()
    assert trainee_year_status(cancelled, withdrawn=True) == "cancelled"


NOMINATED = Nomination("n1", "S1", 2025, "D01", "self", nominated=True)
WITHDRAWN = Nomination("n1", "S1", 2025, "D01", "self", nominated=True, withdrawn=True, withdrawn_at=T1)


def test_a_retracted_provisional_decision_is_not_decided_not_cancelled() -> None:
    year = with_decision(TraineeYear("S1", 2025), advanced(1, 0, T0, "a"))
    retracted = with_decision(year, Decision("retracted", 1, None, T1, "r", corrects="a"))
    withdrawn = year_withdrawn([NOMINATED], None, [], [])

    assert trainee_year_contributions(retracted) == Counter()
    assert trainee_year_status(retracted, withdrawn=withdrawn) == "not_decided"


def test_a_withdrawn_year_is_cancelled_even_if_its_decisions_were_never_announced() -> None:
    never_announced = TraineeYear("S1", 2025)

    withdrawn = year_withdrawn([WITHDRAWN], None, [], ["s1"])

    assert withdrawn
    assert trainee_year_status(never_announced, withdrawn=withdrawn) == "cancelled"


def test_a_withdrawal_after_a_curriculum_completion_or_after_the_closing_does_not_cancel_the_year() -> None:
    assert not year_withdrawn([WITHDRAWN], None, [("s1", T0)], ["s1"])
    assert year_withdrawn([WITHDRAWN], None, [("baseline", T0)], ["s1"])
    assert not year_withdrawn([WITHDRAWN], T0, [], ["s1"])  # withdrawn after the year was closed
    assert year_withdrawn([WITHDRAWN], T2, [("s1", datetime(2026, 1, 1, tzinfo=UTC))], ["s1"])  # a late completion


def test_a_person_who_completed_stage_five_is_finished_in_every_later_year() -> None:
    stays_at_five = with_decision(TraineeYear("S1", 2029), Decision("repeated", 5, None, T0, "r5"))

    assert trainee_year_status(stays_at_five, finished_before=True) == "finished"
    assert trainee_year_status(stays_at_five, finished_before=False) == "in_training"


def test_a_completion_counts_for_the_plan_and_for_the_trainees_department() -> None:
    year = TraineeYear("S1", 2024, decisions=(advanced(1, 0, T0),), department_code="D01")

    completed = with_completion(year, StageCompletion(1, T1))

    assert trainee_year_contributions(completed)[PlanCount(2024, 1, "completed")] == 1
    assert trainee_year_contributions(completed)[DepartmentCount(2024, "D01", "completions")] == 1
    assert with_completion(completed, StageCompletion(1, T1)) == completed
    assert trainee_year_status(with_completion(year, StageCompletion(5, T1))) == "finished"


# ---- superseded completions: a StageCompleted counts while the decision it completes stands ----

FIRST = Decision("advanced", 1, 0, T0, "first")
CORRECTION = Decision("advanced", 1, 0, T2, "second", corrects="first")
COMPLETED_FIRST = StageCompletion(1, T1, decision_id="first")


def apply_all(facts: list[Decision | StageCompletion]) -> TraineeYear:
    year = TraineeYear("S1", 2024, department_code="D01")
    for fact in facts:
        year = with_decision(year, fact) if isinstance(fact, Decision) else with_completion(year, fact)
    return year


def test_a_completion_of_the_standing_decision_counts() -> None:
    year = apply_all([FIRST, COMPLETED_FIRST])

    assert trainee_year_contributions(year) == Counter({
        PlanCount(2024, 1, "entered"): 1, PlanCount(2024, 1, "new"): 1, PlanCount(2024, 1, "completed"): 1,
        DepartmentCount(2024, "D01", "completions"): 1,
    })
    assert trainee_year_status(year) == "completed"


def test_a_completion_stops_counting_once_its_decision_is_corrected_whatever_the_order() -> None:
    expected = Counter({PlanCount(2024, 1, "entered"): 1, PlanCount(2024, 1, "new"): 1})

    for order in permutations([FIRST, COMPLETED_FIRST, CORRECTION]):
        year = apply_all(list(order))

        assert trainee_year_contributions(year) == expected, order
        assert (year.decision, year.completed_stage, trainee_year_status(year)) == (
            CORRECTION, None, "in_training"), order


def test_duplicated_decisions_and_completions_change_nothing() -> None:
    once = apply_all([FIRST, COMPLETED_FIRST, CORRECTION])

    twice = apply_all([CORRECTION, COMPLETED_FIRST, FIRST, COMPLETED_FIRST, CORRECTION, FIRST])

    assert twice == once


def test_a_completion_of_the_correcting_decision_counts() -> None:
    completed_again = StageCompletion(1, T2, decision_id="second")

    for order in permutations([FIRST, COMPLETED_FIRST, CORRECTION, completed_again]):
        year = apply_all(list(order))

        assert trainee_year_contributions(year)[PlanCount(2024, 1, "completed")] == 1, order
        assert year.completion == completed_again, order


def test_a_completion_waits_for_the_decision_it_completes() -> None:
    before = apply_all([COMPLETED_FIRST])
    after = apply_all([COMPLETED_FIRST, FIRST])

    assert trainee_year_contributions(before) == Counter()
    assert trainee_year_contributions(after)[PlanCount(2024, 1, "completed")] == 1


def test_a_correction_standing_wins_even_if_its_clock_is_earlier_than_the_decision_it_corrects() -> None:
    skewed = Decision("repeated", 1, None, T0, "a-correction", corrects="zz-first")
    corrected = Decision("advanced", 2, 1, T1, "zz-first")

    year = apply_all([corrected, StageCompletion(2, T1, decision_id="zz-first"), skewed])

    assert (year.stage, year.completed_stage) == (1, None)


def test_a_completion_without_a_decision_id_counts_whatever_the_decision() -> None:
    year = apply_all([FIRST, StageCompletion(1, T1), CORRECTION])

    assert trainee_year_contributions(year)[PlanCount(2024, 1, "completed")] == 1


def test_only_an_active_nomination_takes_its_departments_slot() -> None:
    nomination = Nomination("N1", "S1", 2024, "D01", "recommended", nominated=True)

    assert nomination_contributions(nomination) == Counter({DepartmentCount(2024, "D01", "recommended"): 1})
    assert nomination_contributions(Nomination("N1", "S1", 2024, withdrawn=True)) == Counter()
    withdrawn_after = Nomination("N1", "S1", 2024, "D01", "recommended", nominated=True, withdrawn=True)
    assert nomination_contributions(withdrawn_after) == Counter()


def test_a_trainee_year_belongs_to_its_active_nominations_department() -> None:
    withdrawn = Nomination("N1", "S1", 2024, "D01", "self", nominated=True, withdrawn=True)
    active = Nomination("N2", "S1", 2024, "D02", "self", nominated=True)

    assert trainee_department([withdrawn, active]) == "D02"
    assert trainee_department([withdrawn]) == "D01"
    assert trainee_department([]) is None


def test_baseline_counts_people_on_the_roster_in_that_years_department() -> None:
    manager = BaselinePerson(2024, "S1", on_roster=True, department_code="D01", is_manager=True,
                             all_staff_sessions=1, managers_sessions=0)
    off_roster = BaselinePerson(2024, "S9", all_staff_sessions=3)

    assert baseline_contributions(manager) == Counter({
        BaselineCount(2024, "D01", "staff"): 1,
        BaselineCount(2024, "D01", "staff_done"): 1,
        BaselineCount(2024, "D01", "managers"): 1,
    })
    assert baseline_contributions(off_roster) == Counter()


def test_a_waived_session_counts_as_met_and_is_shown_as_waived() -> None:
    waived = Attendance("X1", "S1", completions=0, waivers=1)
    both = Attendance("X1", "S1", completions=2, waivers=1)

    assert attendance_contributions(waived) == Counter(
        {SessionCount("X1", "completions"): 1, SessionCount("X1", "waived"): 1}
    )
    assert attendance_contributions(both) == Counter({SessionCount("X1", "completions"): 1})


def test_moving_a_person_between_departments_moves_their_counts() -> None:
    before = baseline_contributions(BaselinePerson(2024, "S1", True, "D01", all_staff_sessions=1))
    after = baseline_contributions(BaselinePerson(2024, "S1", True, "D02", all_staff_sessions=1))

    difference = tally_difference(before, after)

    assert difference == {
        BaselineCount(2024, "D01", "staff"): -1,
        BaselineCount(2024, "D01", "staff_done"): -1,
        BaselineCount(2024, "D02", "staff"): 1,
        BaselineCount(2024, "D02", "staff_done"): 1,
    }
    assert merge_differences([difference, tally_difference(after, before)]) == {}


def test_a_completion_recorded_after_the_year_closed_is_late() -> None:
    assert is_late(T1, T0)
    assert not is_late(T0, T1)
    assert not is_late(T1, None)
