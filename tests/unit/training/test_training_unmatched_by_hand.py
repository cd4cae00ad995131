"""The offices' queue of unmatched reports: matching one by hand to the person it meant, or dismissing it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dx_shared.calendar import JST
from dx_shared.contracts import Audience, CompletionSource, Method
from training.domain import (
    DismissalReasonRequired,
    FactWindow,
    InvalidSession,
    OccurredInFuture,
    Outcome,
    ReportedResult,
    Session,
    UnknownSession,
    UnknownStaff,
    UnknownUnmatched,
    UnmatchedAlreadyResolved,
    UnmatchedEntry,
    UnmatchedReason,
    UnmatchedResult,
    check_hand_match,
    dismissal_reason,
    matched_by_hand,
    open_entry,
)

NOW = datetime(2025, 7, 1, 3, 0, tzinfo=UTC)
SESSION = Session("S1", 2025, Method.E_LEARNING, Audience.PROMOTER, "業務効率化", stage=1)
REPORTED = ReportedResult(
    source=CompletionSource.XAPI,
    source_key="xapi:abc",
    session_ref="https://lms.example.jp/activities/S1",
    staff_id="A1O01",
    occurred_at=datetime(2025, 6, 1, 10, 0, tzinfo=JST),
    outcome=Outcome(completed=True, passed=False),
)
UNMATCHED = UnmatchedResult("U1", UnmatchedReason.UNKNOWN_STAFF, REPORTED, NOW)


def test_an_open_report_may_be_resolved() -> None:
    assert open_entry(UnmatchedEntry(UNMATCHED, None), "U1") is UNMATCHED


def test_a_report_resolved_before_is_refused_rather_than_resolved_twice() -> None:
    with pytest.raises(UnmatchedAlreadyResolved) as refused:
        open_entry(UnmatchedEntry(UNMATCHED, "dismissed"), "U1")
    assert refused.value.facts["resolution"] == "dismissed"


def test_an_unknown_report_is_refused() -> None:
    with pytest.raises(UnknownUnmatched):
        open_entry(None, "U404")


def test_matching_by_hand_changes_only_the_person_so_the_completion_id_is_the_automatic_one() -> None:
    corrected = matched_by_hand(UNMATCHED, " A1001 ", None)
    assert corrected.staff_id == "A1001"
    assert corrected.session_ref == REPORTED.session_ref
    assert corrected.completion_id == REPORTED.completion_id
    assert (corrected.occurred_at, corrected.outcome) == (REPORTED.occurred_at, REPORTED.outcome)


def test_matching_by_hand_may_name_the_session_the_report_meant() -> None:
    assert matched_by_hand(UNMATCHED, "A1001", " S2 ").session_ref == "S2"


def test_matching_by_hand_to_a_blank_staff_id_is_refused() -> None:
    with pytest.raises(InvalidSession):
        matched_by_hand(UNMATCHED, "  ", None)


def test_a_hand_match_to_a_session_that_does_not_exist_is_refused() -> None:
    with pytest.raises(UnknownSession):
        check_hand_match(REPORTED, None, True, FactWindow(NOW))


def test_a_hand_match_to_someone_missing_from_the_years_roster_is_refused() -> None:
    with pytest.raises(UnknownStaff):
        check_hand_match(REPORTED, SESSION, False, FactWindow(NOW))


def test_a_hand_match_before_any_roster_of_the_year_is_accepted_as_automatic_matching_would() -> None:
    check_hand_match(REPORTED, SESSION, None, FactWindow(NOW))


def test_a_hand_match_of_a_report_dated_in_the_future_is_refused() -> None:
    with pytest.raises(OccurredInFuture):
        check_hand_match(REPORTED, SESSION, True, FactWindow(datetime(2025, 5, 1, tzinfo=UTC)))


def test_dismissing_needs_a_reason() -> None:
    assert dismissal_reason("  テスト用アカウントのため ") == "テスト用アカウントのため"
    with pytest.raises(DismissalReasonRequired):
        dismissal_reason(" \u3000 ")
