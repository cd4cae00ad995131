"""The report pages' own display rules: who is behind, the bureau grouping, and who may search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dx_shared.calendar import JST
from dx_shared.roles import Caller, Role
from portal.report_views import BEHIND_WEEKS_LEFT, bureaus_of, is_behind, offers_search, reports_home

YEAR_END = datetime(2026, 4, 1, tzinfo=JST)  # FY2025 ends here


def weeks_before_end(weeks: float) -> datetime:
    return (YEAR_END - timedelta(weeks=weeks)).astimezone(UTC)


def test_a_trainee_with_sessions_open_and_less_than_the_margin_left_is_behind() -> None:
    assert is_behind("in_training", 3, 1, 2025, weeks_before_end(BEHIND_WEEKS_LEFT - 0.1))


def test_a_trainee_with_sessions_open_but_enough_weeks_left_is_not_behind() -> None:
    assert not is_behind("in_training", 3, 1, 2025, weeks_before_end(BEHIND_WEEKS_LEFT))
    assert not is_behind("in_training", 3, 0, 2025, datetime(2025, 6, 1, tzinfo=JST))


def test_a_trainee_whose_required_sessions_are_all_done_is_never_behind() -> None:
    assert not is_behind("in_training", 3, 3, 2025, weeks_before_end(1))


@pytest.mark.parametrize("status", ["completed", "finished", "cancelled", "not_decided"])
def test_only_someone_still_in_training_can_be_behind(status: str) -> None:
    assert not is_behind(status, 3, 0, 2025, weeks_before_end(1))


def test_a_year_that_has_ended_with_sessions_open_counts_as_behind() -> None:
    assert is_behind("in_training", 2, 1, 2025, YEAR_END + timedelta(days=3))


def test_departments_are_grouped_by_bureau_in_their_order_with_their_figures_added() -> None:
    rows = [
        {"bureau": "企画政策部", "recommended_slot_used": True, "self_slot": 1, "trainees": 2, "completions": 1},
        {"bureau": "総務部", "recommended_slot_used": False, "self_slot": 0, "trainees": 0, "completions": 0},
        {"bureau": "企画政策部", "recommended_slot_used": False, "self_slot": 2, "trainees": 2, "completions": 0},
    ]
    first, second = bureaus_of(rows)
    assert (first.bureau, first.departments, first.recommended_slot_used, first.self_slot, first.trainees,
            first.completions) == ("企画政策部", 2, 1, 3, 4, 1)
    assert (second.bureau, second.departments, second.trainees) == ("総務部", 1, 0)


def test_only_the_offices_are_offered_the_person_search() -> None:
    assert offers_search(Caller(Role.DX_OFFICE)) and offers_search(Caller(Role.HR_OFFICE))
    assert not offers_search(Caller(Role.INFO_POLICY))
    assert not offers_search(Caller(Role.DEPARTMENT, department_code="0101"))
    assert not offers_search(Caller(Role.TRAINEE, staff_id="001001"))


def test_a_trainees_drill_down_starts_at_their_own_page() -> None:
    assert reports_home(Caller(Role.TRAINEE, staff_id="001001")) == "/reports/people/001001"
    assert reports_home(Caller(Role.TRAINEE)) is None
    assert reports_home(Caller(Role.DEPARTMENT, department_code="0101")) == "/reports"
