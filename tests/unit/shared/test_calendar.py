"""The fiscal-year calendar (POLICY.md §1): 1 April to 31 March, judged in Japan time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dx_shared.calendar import (
    JST,
    NaiveDateTimeError,
    fiscal_year_end,
    fiscal_year_label_ja,
    fiscal_year_of,
    fiscal_year_start,
    parse_fiscal_year,
    reiwa_year,
)


def test_half_past_eleven_on_31_march_in_japan_is_still_the_old_fiscal_year() -> None:
    assert fiscal_year_of(datetime(2025, 3, 31, 23, 30, tzinfo=JST)) == 2024


def test_half_past_three_utc_on_31_march_is_already_1_april_in_japan_and_the_new_fiscal_year() -> None:
    assert fiscal_year_of(datetime(2025, 3, 31, 15, 30, tzinfo=UTC)) == 2025


def test_a_time_without_an_offset_cannot_be_placed_in_a_fiscal_year() -> None:
    with pytest.raises(NaiveDateTimeError):
        fiscal_year_of(datetime(2025, 3, 31, 23, 30))


def test_fiscal_years_are_written_reiwa_to_people() -> None:
    assert reiwa_year(2024) == 6
    assert fiscal_year_label_ja(2024) == "令和6年度"
    assert fiscal_year_label_ja(2019) == "令和元年度"


@pytest.mark.parametrize("text", ["2024", "FY2024", "fy2024", "R6", "令和6年度", " 2024 "])
def test_every_way_the_offices_write_a_fiscal_year_is_understood(text: str) -> None:
    assert parse_fiscal_year(text) == 2024


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_moment_lies_within_the_bounds_of_its_fiscal_year(moment: datetime) -> None:
    year = fiscal_year_of(moment)
    assert fiscal_year_start(year) <= moment < fiscal_year_end(year)
    assert fiscal_year_end(year) - fiscal_year_start(year) in (timedelta(days=365), timedelta(days=366))
    assert fiscal_year_start(year).date() == date(year, 4, 1)
