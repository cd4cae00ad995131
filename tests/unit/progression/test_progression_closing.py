"""P6: a fiscal year can be closed from 1 April after it (JST); earlier only by an audited early close."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dx_shared.calendar import JST
from progression.closing import (
    EarlyCloseNotPermitted,
    EarlyCloseReasonRequired,
    FiscalYearNotEnded,
    may_close,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_a_year_that_has_ended_may_be_closed() -> None:
    permit = may_close(2025, NOW, by_dx_office=True)
    assert (permit.fiscal_year, permit.early) == (2025, False)


@pytest.mark.parametrize("year", [2026, 2027])
def test_closing_a_year_that_has_not_ended_is_refused(year: int) -> None:
    with pytest.raises(FiscalYearNotEnded) as refused:
        may_close(year, NOW, by_dx_office=True)
    assert refused.value.code == "FISCAL_YEAR_NOT_ENDED"
    assert refused.value.status == 409


def test_a_year_can_be_closed_at_midnight_on_1_april_in_japan_not_a_second_earlier() -> None:
    with pytest.raises(FiscalYearNotEnded):
        may_close(2026, datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST), by_dx_office=True)
    assert not may_close(2026, datetime(2027, 4, 1, 0, 0, tzinfo=JST), by_dx_office=True).early


def test_an_early_close_needs_a_reason() -> None:
    for reason in (None, "", "   "):
        with pytest.raises(EarlyCloseReasonRequired):
            may_close(2026, NOW, early_close=True, reason=reason, by_dx_office=True)


def test_an_early_close_is_for_the_dx_office_only() -> None:
    with pytest.raises(EarlyCloseNotPermitted):
        may_close(2026, NOW, early_close=True, reason="組織改編のため", by_dx_office=False)


def test_an_early_close_by_the_dx_office_with_a_reason_goes_ahead_and_keeps_the_reason() -> None:
    permit = may_close(2026, NOW, early_close=True, reason=" 組織改編のため ", by_dx_office=True)
    assert permit.early
    assert permit.reason == "組織改編のため"
