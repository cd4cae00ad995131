"""The 1→5 stage rules (POLICY.md §4 P1–P7), one sentence of the policy per test."""

from __future__ import annotations

from progression.domain import DecisionEvent, DecisionKind, PersonFacts, RepeatReason, decide, finished_by
from tests.unit.progression.progression_builders import (
    announce_step_by_step,
    at,
    closed,
    completed,
    curriculum,
    nominated,
    stage_curriculum_completed,
    stage_one_curriculum_completed,
    standing_of,
    waived,
    withdrawn,
)


def test_a_first_nomination_enters_stage_one_in_that_fiscal_year() -> None:
    year = standing_of(nominated(2024)).year(2024)

    assert year is not None
    assert (year.kind, year.from_stage, year.stage) == (DecisionKind.ADVANCED, 0, 1)
    assert year.evidence == ("ev-n-2024",)


def test_a_first_nomination_in_a_later_fiscal_year_also_enters_stage_one() -> None:
    year = standing_of(nominated(2026)).year(2026)

    assert year is not None and year.stage == 1


def test_a_trainee_who_completed_stage_one_and_is_nominated_again_advances_to_stage_two() -> None:
    standing = standing_of(nominated(2024), *stage_one_curriculum_completed(2024), nominated(2025))

    year = standing.year(2025)
    assert year is not None
    assert (year.kind, year.from_stage, year.stage) == (DecisionKind.ADVANCED, 1, 2)
    assert set(year.evidence) >= {"ev-n-2025", "ev-cur-2024-1-1"}


def test_a_trainee_who_did_not_complete_repeats_the_stage_once_the_year_is_closed() -> None:
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a", "b"), completed("a", 2024), closed(2024), nominated(2025)
    )

    year = standing.year(2025)
    assert year is not None
    assert (year.kind, year.stage, year.reason) == (DecisionKind.REPEATED, 1, RepeatReason.NOT_COMPLETED)
    assert "ev-close-2024" in year.evidence


def test_the_next_year_is_pending_while_the_previous_year_is_open_and_not_completed() -> None:
    standing = standing_of(nominated(2024), curriculum(2024, 1, "a"), nominated(2025))

    year = standing.year(2025)
    assert year is not None
    assert (year.kind, year.stage, year.awaiting_fiscal_year) == (DecisionKind.PENDING, None, 2024)
    assert not year.final


def test_a_pending_year_advances_the_moment_the_qualifying_completion_arrives() -> None:
    announced, _ = announce_step_by_step(
        [nominated(2024), curriculum(2024, 1, "a"), nominated(2025), completed("a", 2024)]
    )

    kinds = [(d.event, d.fiscal_year, d.stage) for d in announced]
    assert kinds == [
        (DecisionEvent.STAGE_ADVANCED, 2024, 1),
        (DecisionEvent.STAGE_COMPLETED, 2024, 1),
        (DecisionEvent.STAGE_ADVANCED, 2025, 2),
    ]


def test_a_pending_year_repeats_the_moment_the_previous_year_is_closed() -> None:
    announced, _ = announce_step_by_step(
        [nominated(2024), curriculum(2024, 1, "a"), nominated(2025), closed(2024)]
    )

    assert [(d.event, d.fiscal_year, d.stage) for d in announced] == [
        (DecisionEvent.STAGE_ADVANCED, 2024, 1),
        (DecisionEvent.STAGE_REPEATED, 2025, 1),
    ]


def test_a_completion_that_arrives_before_its_nomination_still_counts() -> None:
    facts = [*stage_one_curriculum_completed(2024), nominated(2025), nominated(2024)]

    year = standing_of(*facts).year(2025)
    assert year is not None and year.stage == 2


def test_a_trainee_who_completed_stage_five_has_finished_and_stays_at_five() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024)]
    for fiscal_year, stage in zip(range(2025, 2029), range(2, 6), strict=True):
        facts += [nominated(fiscal_year), *stage_curriculum_completed(fiscal_year, stage)]
    facts.append(nominated(2029))

    standing = standing_of(*facts)

    assert [y.stage for y in standing.years] == [1, 2, 3, 4, 5, 5]
    final = standing.year(2029)
    assert final is not None
    assert (final.kind, final.reason) == (DecisionKind.REPEATED, RepeatReason.FINISHED)


def test_a_person_who_completed_stage_five_is_finished_in_every_later_year() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024)]
    for fiscal_year, stage in zip(range(2025, 2029), range(2, 6), strict=True):
        facts += [nominated(fiscal_year), *stage_curriculum_completed(fiscal_year, stage)]
    facts += [nominated(2029), curriculum(2029, 5, "ai-2029"), closed(2029), nominated(2030)]

    standing = standing_of(*facts)

    assert finished_by(standing, None)
    assert [finished_by(standing, y.fiscal_year) for y in standing.years] == [
        False, False, False, False, True, True, True,
    ]


def test_stage_five_not_completed_is_repeated_not_finished() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024)]
    for fiscal_year, stage in zip(range(2025, 2028), range(2, 5), strict=True):
        facts += [nominated(fiscal_year), *stage_curriculum_completed(fiscal_year, stage)]
    facts += [nominated(2028), curriculum(2028, 5, "ai"), closed(2028), nominated(2029)]

    final = standing_of(*facts).year(2029)

    assert final is not None
    assert (final.stage, final.reason) == (5, RepeatReason.NOT_COMPLETED)


def test_a_trainee_who_skips_a_year_continues_from_the_last_enrolled_year() -> None:
    standing = standing_of(nominated(2024), *stage_one_curriculum_completed(2024), nominated(2026))

    year = standing.year(2026)
    assert year is not None
    assert (year.from_stage, year.stage, year.deciding_fiscal_year) == (1, 2, 2024)


def test_completing_later_stages_early_never_skips_a_stage() -> None:
    facts = [
        nominated(2024),
        *stage_one_curriculum_completed(2024),
        *stage_curriculum_completed(2024, 2),
        *stage_curriculum_completed(2024, 3),
        nominated(2025),
    ]

    year = standing_of(*facts).year(2025)
    assert year is not None and year.stage == 2


def test_a_completion_in_another_fiscal_year_does_not_complete_the_stage() -> None:
    standing = standing_of(nominated(2024), curriculum(2024, 1, "a"), completed("a", 2025), nominated(2025))

    year_2024 = standing.year(2024)
    assert year_2024 is not None and year_2024.completion is None


def test_an_empty_curriculum_never_completes() -> None:
    year = standing_of(nominated(2024), curriculum(2024, 1)).year(2024)

    assert year is not None and year.completion is None


def test_completed_at_is_the_moment_the_last_required_session_was_first_met() -> None:
    standing = standing_of(
        nominated(2024),
        curriculum(2024, 1, "a", "b"),
        completed("a", 2024, at(2024, 5)),
        completed("b", 2024, at(2024, 9)),
        completed("b", 2024, at(2024, 7)),
    )

    year = standing.year(2024)
    assert year is not None and year.completion is not None
    assert year.completion.completed_at == at(2024, 7)


def test_a_waiver_counts_as_met_at_the_time_it_was_recorded() -> None:
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a", "b"), completed("a", 2024, at(2024, 5)),
        waived("b", 2024, at(2024, 10)), nominated(2025),
    )

    year_2024, year_2025 = standing.year(2024), standing.year(2025)
    assert year_2024 is not None and year_2024.completion is not None
    assert year_2024.completion.completed_at == at(2024, 10)
    assert "ev-wv-b-2024" in year_2024.completion.evidence
    assert year_2025 is not None and year_2025.stage == 2


def test_a_stage_completed_under_the_revision_in_force_stays_completed_after_a_later_revision() -> None:
    facts = [
        nominated(2024), curriculum(2024, 1, "a", published=at(2024, 4)), completed("a", 2024, at(2024, 7)),
        curriculum(2024, 1, "a", "b", revision=2, published=at(2024, 9)), nominated(2025),
    ]

    for order in (facts, list(reversed(facts))):
        standing = standing_of(*order)
        completed_year, next_year = standing.year(2024), standing.year(2025)
        assert completed_year is not None and completed_year.completion is not None
        assert completed_year.completion.completed_at == at(2024, 7)
        assert next_year is not None and next_year.stage == 2


def test_a_stage_not_yet_completed_is_judged_against_the_revision_in_force_when_its_last_session_was_met() -> None:
    before_revision = [
        nominated(2024), curriculum(2024, 1, "a", published=at(2024, 4)),
        curriculum(2024, 1, "a", "b", revision=2, published=at(2024, 6)), completed("a", 2024, at(2024, 7)),
    ]

    only_first = standing_of(*before_revision).year(2024)
    assert only_first is not None and only_first.completion is None  # revision 1 was no longer in force

    both = standing_of(*before_revision, completed("b", 2024, at(2024, 8))).year(2024)
    assert both is not None and both.completion is not None
    assert both.completion.completed_at == at(2024, 8)
    assert both.completion.evidence[0] == "ev-cur-2024-1-2"


def test_a_revision_already_met_when_it_comes_into_force_completes_the_stage_then() -> None:
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a", "c", published=at(2024, 4)),
        completed("b", 2024, at(2024, 5)), completed("a", 2024, at(2024, 6)),
        curriculum(2024, 1, "a", "b", revision=2, published=at(2024, 9)),
    )

    year = standing.year(2024)
    assert year is not None and year.completion is not None
    assert year.completion.completed_at == at(2024, 9)


def test_the_first_revision_is_the_curriculum_from_the_start_of_the_year() -> None:
    standing = standing_of(
        nominated(2024), completed("a", 2024, at(2024, 5)), curriculum(2024, 1, "a", published=at(2024, 9)),
    )

    year = standing.year(2024)
    assert year is not None and year.completion is not None
    assert year.completion.completed_at == at(2024, 5)


def test_a_curriculum_revision_is_judged_by_the_facts_times_whatever_the_arrival_order() -> None:
    facts = [
        nominated(2024), curriculum(2024, 1, "a", published=at(2024, 4)), completed("a", 2024, at(2024, 7)),
        curriculum(2024, 1, "a", "b", revision=2, published=at(2024, 6)), completed("b", 2024, at(2024, 10)),
        nominated(2025),
    ]

    assert standing_of(*facts) == standing_of(*reversed(facts))
    year = standing_of(*facts).year(2024)
    assert year is not None and year.completion is not None
    assert year.completion.completed_at == at(2024, 10)


def test_a_completion_recorded_after_the_year_was_closed_is_late_and_changes_nothing() -> None:
    late = completed("a", 2024, occurred=at(2024, 3, 20), recorded=at(2025, 4, 10))
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a"), closed(2024), late, nominated(2025)
    )

    year = standing.year(2025)
    assert year is not None and (year.kind, year.stage) == (DecisionKind.REPEATED, 1)
    assert [(f.kind, f.event_id) for f in standing.late] == [("completion", late.event_id)]


def test_a_completion_recorded_before_the_close_counts_even_if_it_arrives_after() -> None:
    on_time = completed("a", 2024, occurred=at(2024, 3, 20), recorded=at(2024, 3, 25))
    announced, emitted = announce_step_by_step(
        [nominated(2024), curriculum(2024, 1, "a"), nominated(2025), closed(2024), on_time]
    )

    assert emitted[2025].stage == 2
    correction = announced[-1]
    assert (correction.event, correction.fiscal_year, correction.stage) == (
        DecisionEvent.STAGE_ADVANCED, 2025, 2
    )
    repeat = next(d for d in announced if d.event is DecisionEvent.STAGE_REPEATED)
    assert correction.corrects == repeat.event_id


def test_a_withdrawal_without_completions_cancels_the_trainee_year() -> None:
    announced, emitted = announce_step_by_step([nominated(2024), withdrawn(2024)])

    cancellation = announced[-1]
    assert cancellation.event is DecisionEvent.ENROLLMENT_CANCELLED
    assert cancellation.corrects == announced[0].event_id
    assert cancellation.evidence == ("ev-w-n-2024",)
    assert not emitted[2024].live
    assert [c.fiscal_year for c in standing_of(nominated(2024), withdrawn(2024)).cancelled_years] == [2024]


def test_a_withdrawal_without_completions_re_decides_the_later_years() -> None:
    announced, emitted = announce_step_by_step(
        [nominated(2024), curriculum(2024, 1, "x"), nominated(2025), withdrawn(2024)]
    )

    assert [(d.event, d.fiscal_year) for d in announced] == [
        (DecisionEvent.STAGE_ADVANCED, 2024),
        (DecisionEvent.ENROLLMENT_CANCELLED, 2024),
        (DecisionEvent.STAGE_ADVANCED, 2025),
    ]
    assert (emitted[2025].from_stage, emitted[2025].stage) == (0, 1)


def test_a_withdrawal_after_completions_leaves_the_trainee_year_standing() -> None:
    # P7 cancels only a year without completions: the sessions were attended and the stage may be
    # completed, so undoing the year would erase training that happened (and could not be re-done).
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a", "b"), completed("a", 2024), withdrawn(2024), nominated(2025)
    )

    assert standing.year(2024) is not None
    assert standing.cancelled_years == ()


def test_baseline_completions_do_not_keep_a_withdrawn_year() -> None:
    standing = standing_of(
        nominated(2024), curriculum(2024, 1, "a"), completed("baseline-e-learning", 2024), withdrawn(2024)
    )

    assert standing.year(2024) is None


def test_a_withdrawal_recorded_after_the_year_was_closed_changes_nothing() -> None:
    late = withdrawn(2024, when=at(2025, 5))
    standing = standing_of(nominated(2024), closed(2024), late)

    assert standing.year(2024) is not None
    assert [f.kind for f in standing.late] == ["withdrawal"]


def test_a_decision_is_provisional_until_its_year_and_the_years_before_are_closed() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024), nominated(2025)]

    open_standing = standing_of(*facts)
    half_closed = standing_of(*facts, closed(2025))
    all_closed = standing_of(*facts, closed(2024), closed(2025))

    assert [y.final for y in open_standing.years] == [False, False]
    assert [y.final for y in half_closed.years] == [False, False]
    assert [y.final for y in all_closed.years] == [True, True]


def test_duplicated_facts_change_neither_the_standing_nor_the_announcements() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024), nominated(2025)]
    once, _ = announce_step_by_step(facts)
    twice, _ = announce_step_by_step([f for fact in facts for f in (fact, fact)])

    assert once == twice
    assert standing_of(*facts) == standing_of(*facts, *facts)


def test_a_stage_completion_is_announced_once() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024), completed("s1a-2024", 2024, at(2024, 11))]

    announced, _ = announce_step_by_step(facts)

    assert [d.event for d in announced].count(DecisionEvent.STAGE_COMPLETED) == 1


def test_a_decided_year_that_becomes_undecided_again_is_retracted_not_cancelled_and_later_re_decided() -> None:
    facts = [nominated(2025), nominated(2024), curriculum(2024, 1, "a"), closed(2024)]

    announced, emitted = announce_step_by_step(facts)

    assert [(d.event, d.fiscal_year, d.stage, d.reason) for d in announced] == [
        (DecisionEvent.STAGE_ADVANCED, 2025, 1, None),
        (DecisionEvent.STAGE_ADVANCED, 2024, 1, None),
        (DecisionEvent.DECISION_RETRACTED, 2025, 1, "awaiting_earlier_year"),
        (DecisionEvent.STAGE_REPEATED, 2025, 1, "not_completed"),
    ]
    assert announced[2].corrects == announced[0].event_id
    assert announced[2].awaiting_fiscal_year == 2024
    assert announced[-1].corrects == announced[2].event_id
    assert emitted[2025].stage == 1


def test_a_completion_found_late_once_the_closing_is_known_withdraws_its_announcement() -> None:
    late = completed("a", 2024, occurred=at(2024, 3, 20), recorded=at(2025, 4, 2))
    announced, emitted = announce_step_by_step(
        [nominated(2024), curriculum(2024, 1, "a"), late, closed(2024)]
    )

    assert [d.event for d in announced] == [
        DecisionEvent.STAGE_ADVANCED, DecisionEvent.STAGE_COMPLETED, DecisionEvent.STAGE_ADVANCED,
    ]
    assert announced[-1].corrects == announced[0].event_id
    assert emitted[2024].completion_event_id is None


def test_recomputing_the_same_facts_announces_the_same_event_ids() -> None:
    facts = [nominated(2024), curriculum(2024, 1, "a"), nominated(2025), closed(2024)]

    first, _ = announce_step_by_step(facts)
    second, _ = announce_step_by_step(facts)

    assert [d.event_id for d in first] == [d.event_id for d in second]
    assert len({d.event_id for d in first}) == len(first)


def test_every_decision_names_the_rule_version() -> None:
    announced, _ = announce_step_by_step([nominated(2024), *stage_one_curriculum_completed(2024)])

    assert {d.rule_version for d in announced} == {"policy-2024-02-29/1"}


def test_a_person_with_no_nomination_is_unknown() -> None:
    assert not decide(PersonFacts("S9999")).known
    assert not standing_of(completed("a", 2024)).known
