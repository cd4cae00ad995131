"""Completions, attendance and waivers dated after now (beyond the clock skew) cannot be true."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from dx_shared.calendar import JST
from dx_shared.contracts import Audience, Method
from dx_shared.roles import Role
from training.backfill import BackfillFieldTooLarge, BackfillRow, BackfillRowError, read_backfill
from training.domain import (
    FactWindow,
    FiscalYearOutOfRange,
    OccurredInFuture,
    Session,
    import_completion,
    take_attendance,
    waive_completion,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
WINDOW = FactWindow(NOW, timedelta(seconds=300), 2019)
CLASSROOM = Session("C1", 2026, Method.CLASSROOM, Audience.PROMOTER, "集合研修", stage=1)
NEXT_YEAR = Session("E27", 2027, Method.E_LEARNING, Audience.ALL_STAFF, "来年度の研修")


def test_a_completion_dated_after_now_plus_the_skew_is_refused() -> None:
    with pytest.raises(OccurredInFuture) as refused:
        WINDOW.check_occurred(NOW + timedelta(seconds=301))
    assert refused.value.code == "OCCURRED_IN_FUTURE"
    WINDOW.check_occurred(NOW + timedelta(seconds=300))
    WINDOW.check_occurred(datetime(2024, 6, 1, tzinfo=JST))


def test_a_completion_in_a_fiscal_year_before_the_first_one_is_refused() -> None:
    with pytest.raises(FiscalYearOutOfRange):
        WINDOW.check_occurred(datetime(2019, 3, 31, 12, 0, tzinfo=JST))
    WINDOW.check_occurred(datetime(2019, 4, 1, 0, 0, tzinfo=JST))


def test_attendance_dated_in_the_future_is_refused_as_a_whole() -> None:
    with pytest.raises(OccurredInFuture):
        take_attendance(
            CLASSROOM,
            ["A1", "A2"],
            already_attended=frozenset(),
            not_on_roster=frozenset(),
            occurred_at=datetime(2027, 2, 1, 10, 0, tzinfo=JST),
            recorded_at=NOW,
            window=WINDOW,
        )


def test_a_backfilled_completion_dated_in_the_future_is_refused() -> None:
    with pytest.raises(OccurredInFuture):
        import_completion(CLASSROOM, "A1", datetime(2028, 5, 1, tzinfo=JST), NOW, on_roster=True, window=WINDOW)


def test_a_waiver_for_a_fiscal_year_that_has_not_begun_is_refused() -> None:
    with pytest.raises(OccurredInFuture):
        waive_completion(Role.DX_OFFICE, NEXT_YEAR, "A1", actor="dx-01", reason="前年度修了済", recorded_at=NOW, window=WINDOW)
    waiver = waive_completion(
        Role.DX_OFFICE, NEXT_YEAR, "A1", actor="dx-01", reason="前年度修了済", recorded_at=NOW, fiscal_year=2026,
        window=WINDOW,
    )
    assert waiver.fiscal_year == 2026


def test_a_waiver_for_a_fiscal_year_before_the_first_one_is_refused() -> None:
    with pytest.raises(FiscalYearOutOfRange):
        waive_completion(
            Role.DX_OFFICE, CLASSROOM, "A1", actor="dx-01", reason="x", recorded_at=NOW, fiscal_year=2018, window=WINDOW
        )


def test_a_csv_field_over_the_csv_module_limit_refuses_the_backfill_with_422() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    raw = f"session_id,staff_id,occurred_at\nS1,A1,2025-06-01\nS1,\"{huge}\",2025-06-01\n".encode()
    with pytest.raises(BackfillFieldTooLarge) as refused:
        read_backfill(raw)
    assert refused.value.status == 422
    assert refused.value.code == "CSV_FIELD_TOO_LARGE"
    assert len(str(refused.value)) < 300


def test_a_backfill_row_error_never_quotes_the_whole_cell() -> None:
    rows = read_backfill(f"session_id,staff_id,occurred_at,success\nS1,A1,2025-06-01,{'y' * 10000}\n".encode())
    assert isinstance(rows[0], BackfillRowError)
    assert len(rows[0].detail) < 200
    assert not isinstance(rows[0], BackfillRow)
