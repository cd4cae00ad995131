"""Which fiscal years and moments are plausible (issue 10, "Impossible facts are refused"): pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dx_shared.calendar import (
    JST,
    accepted_fiscal_years,
    fiscal_year_has_ended,
    fiscal_year_label_ja,
    latest_accepted_fiscal_year,
    occurs_in_future,
    parse_fiscal_year,
)
from dx_shared.plausibility import accepted_fiscal_year
from dx_shared.problems import ProblemError
from dx_shared.service import safe_correlation_id
from dx_shared.settings import Settings

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 令和8年度
SKEW = timedelta(seconds=300)


def test_fiscal_years_from_the_first_configured_year_to_next_year_are_accepted() -> None:
    assert accepted_fiscal_years(2019, NOW) == range(2019, 2028)
    assert latest_accepted_fiscal_year(NOW) == 2027
    # On 1 April in Japan (still 31 March in UTC) the next year moves along.
    assert latest_accepted_fiscal_year(datetime(2027, 3, 31, 15, 0, tzinfo=UTC)) == 2028


@pytest.mark.parametrize("year", [0, 2018, 2028, 9999])
def test_a_fiscal_year_outside_the_accepted_range_is_refused_with_its_code(year: int) -> None:
    with pytest.raises(ProblemError) as refused:
        accepted_fiscal_year(year, Settings(), NOW)
    assert refused.value.status == 422
    assert refused.value.code == "FISCAL_YEAR_OUT_OF_RANGE"


@pytest.mark.parametrize("text", ["R1", "令和元年度", "FY2019", "2019", "R9", "2027"])
def test_every_year_in_the_range_is_accepted_however_it_is_written(text: str) -> None:
    assert accepted_fiscal_year(text, Settings(), NOW) in range(2019, 2028)


@pytest.mark.parametrize("text", ["", "R", "FY-1", "1" * 5000, "twenty", "R6.5"])
def test_text_that_is_not_a_fiscal_year_is_refused_without_echoing_it_whole(text: str) -> None:
    with pytest.raises(ProblemError) as refused:
        accepted_fiscal_year(text, Settings(), NOW)
    assert refused.value.code == "INVALID_FISCAL_YEAR"
    assert len(str(refused.value.to_body())) < 1000


def test_japanese_labels_are_right_for_every_era() -> None:
    assert fiscal_year_label_ja(2019) == "令和元年度"
    assert fiscal_year_label_ja(2026) == "令和8年度"
    assert fiscal_year_label_ja(2018) == "平成30年度"
    assert fiscal_year_label_ja(1989) == "平成元年度"
    assert fiscal_year_label_ja(1988) == "昭和63年度"
    assert [fiscal_year_label_ja(year) for year in accepted_fiscal_years(2015, NOW)][:4] == [
        "平成27年度",
        "平成28年度",
        "平成29年度",
        "平成30年度",
    ]
    assert not any("令和0" in fiscal_year_label_ja(year) for year in range(1950, 2100))


@pytest.mark.parametrize(("text", "year"), [("H30", 2018), ("平成30年度", 2018), ("平成元年度", 1989), ("ＦＹ２０２４", 2024)])
def test_heisei_and_full_width_spellings_are_understood(text: str, year: int) -> None:
    assert parse_fiscal_year(text) == year


def test_a_moment_later_than_now_plus_the_clock_skew_is_in_the_future() -> None:
    assert not occurs_in_future(NOW, NOW, SKEW)
    assert not occurs_in_future(NOW + SKEW, NOW, SKEW)
    assert occurs_in_future(NOW + SKEW + timedelta(seconds=1), NOW, SKEW)
    assert occurs_in_future(datetime(2029, 1, 1, tzinfo=JST), NOW, SKEW)
    assert not occurs_in_future(datetime(2024, 6, 1, tzinfo=JST), NOW, SKEW)


def test_a_fiscal_year_ends_at_midnight_on_1_april_after_it_in_japan() -> None:
    assert not fiscal_year_has_ended(2026, NOW)
    assert fiscal_year_has_ended(2025, NOW)
    assert not fiscal_year_has_ended(2026, datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST))
    assert fiscal_year_has_ended(2026, datetime(2027, 4, 1, 0, 0, tzinfo=JST))


@pytest.mark.parametrize(
    ("stated", "kept"),
    [
        ("req-1.2:3_ABC", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("has space", False),
        ("新しい", False),
        ("x\r\ny", False),
        ("<script>", False),
    ],
)
def test_a_correlation_id_is_kept_only_when_short_and_in_the_safe_character_set(stated: str, kept: bool) -> None:
    assert (safe_correlation_id(stated) == stated) is kept
