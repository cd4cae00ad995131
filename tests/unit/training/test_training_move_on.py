"""cmi5 move_on: when a reported result meets a session."""

from __future__ import annotations

import pytest

from dx_shared.contracts import MoveOn
from training.domain import Outcome, Verb, meets_move_on, outcome_of, outcomes_meeting

COMPLETED_ONLY = outcome_of(Verb.COMPLETED)
PASSED_ONLY = outcome_of(Verb.PASSED)
FAILED = outcome_of(Verb.FAILED)


@pytest.mark.parametrize(
    ("move_on", "outcome", "met"),
    [
        (MoveOn.COMPLETED, COMPLETED_ONLY, True),
        (MoveOn.COMPLETED, PASSED_ONLY, False),
        (MoveOn.COMPLETED, FAILED, False),
        (MoveOn.PASSED, COMPLETED_ONLY, False),
        (MoveOn.PASSED, PASSED_ONLY, True),
        (MoveOn.PASSED, FAILED, False),
        (MoveOn.COMPLETED_AND_PASSED, COMPLETED_ONLY, False),
        (MoveOn.COMPLETED_AND_PASSED, PASSED_ONLY, False),
        (MoveOn.COMPLETED_AND_PASSED, COMPLETED_ONLY.merge(PASSED_ONLY), True),
        (MoveOn.COMPLETED_AND_PASSED, FAILED, False),
        (MoveOn.COMPLETED_OR_PASSED, COMPLETED_ONLY, True),
        (MoveOn.COMPLETED_OR_PASSED, PASSED_ONLY, True),
        (MoveOn.COMPLETED_OR_PASSED, FAILED, False),
    ],
)
def test_each_verb_meets_each_move_on_rule_as_cmi5_says(move_on: MoveOn, outcome: Outcome, met: bool) -> None:
    assert meets_move_on(move_on, outcome) is met


def test_a_completed_statement_with_success_true_meets_completed_and_passed_at_once() -> None:
    assert meets_move_on(MoveOn.COMPLETED_AND_PASSED, outcome_of(Verb.COMPLETED, success=True))


def test_result_completion_counts_as_completion_whatever_the_verb() -> None:
    assert outcome_of(Verb.PASSED, completion=True) == Outcome(completed=True, passed=True)


def test_a_failed_statement_never_counts_as_a_pass_even_with_success_true() -> None:
    assert outcome_of(Verb.FAILED, success=True).passed is False


def test_a_completed_verb_with_success_false_is_completed_but_not_passed() -> None:
    assert outcome_of(Verb.COMPLETED, success=False) == Outcome(completed=True, passed=False)


def test_completed_and_passed_shown_in_separate_statements_accumulate() -> None:
    assert COMPLETED_ONLY.merge(FAILED).merge(PASSED_ONLY) == Outcome(completed=True, passed=True)


@pytest.mark.parametrize(
    ("move_on", "meeting"),
    [
        (MoveOn.COMPLETED, {Outcome(True, False), Outcome(True, True)}),
        (MoveOn.PASSED, {Outcome(False, True), Outcome(True, True)}),
        (MoveOn.COMPLETED_AND_PASSED, {Outcome(True, True)}),
        (MoveOn.COMPLETED_OR_PASSED, {Outcome(True, False), Outcome(False, True), Outcome(True, True)}),
    ],
)
def test_the_outcomes_that_meet_each_move_on_rule_are_listed_for_the_store(
    move_on: MoveOn, meeting: set[Outcome]
) -> None:
    assert set(outcomes_meeting(move_on)) == meeting
