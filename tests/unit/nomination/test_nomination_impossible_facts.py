"""N6: nominations at most one fiscal year ahead; an over-long CSV field refuses the file (not a 500)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from nomination.csv_import import parse_departments, parse_nomination_sheet, parse_roster
from nomination.domain import FiscalYearTooFarAhead, check_fiscal_year_not_too_far_ahead

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_nominations_for_this_year_and_next_year_are_accepted() -> None:
    check_fiscal_year_not_too_far_ahead(2026, NOW)
    check_fiscal_year_not_too_far_ahead(2027, NOW)


@pytest.mark.parametrize("year", [2028, 2030, 9999])
def test_a_nomination_more_than_one_year_ahead_is_refused(year: int) -> None:
    with pytest.raises(FiscalYearTooFarAhead) as refused:
        check_fiscal_year_not_too_far_ahead(year, NOW)
    assert refused.value.code == "FISCAL_YEAR_TOO_FAR_AHEAD"


def test_on_1_april_next_year_moves_along() -> None:
    check_fiscal_year_not_too_far_ahead(2028, datetime(2027, 4, 1, 0, 0, tzinfo=UTC))


HUGE = "x" * (csv.field_size_limit() + 1)


@pytest.mark.parametrize(
    "parse",
    [
        lambda raw: parse_departments(raw),
        lambda raw: parse_roster(raw, {"D1"}),
        lambda raw: parse_nomination_sheet(raw),
    ],
    ids=["departments", "staff", "nominations"],
)
def test_a_csv_field_over_the_csv_module_limit_is_a_file_problem_not_a_crash(parse: object) -> None:
    raw = f'所属コード,所属名,部局\nD1,"{HUGE}",総務部\n'.encode()
    parsed = parse(raw)  # type: ignore[operator]
    codes = [problem.code for problem in parsed.problems]
    assert codes == ["CSV_FIELD_TOO_LARGE"]
    assert all(len(problem.message_en) < 300 for problem in parsed.problems)
