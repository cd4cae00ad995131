"""Department and baseline reports, rates, 令和 labels and the spreadsheet-safe CSV."""

from __future__ import annotations

from reporting.domain import (
    Code,
    Department,
    build_baseline_report,
    build_department_report,
    fiscal_year_label,
    jst_text,
    neutralise_cell,
    rate,
    render_csv,
)

DEPARTMENTS = [
    Department("D01", "財政課", "総務部"),
    Department("D02", "人事課", "総務部"),
    Department("D03", "東青地域県民局", "地域県民局"),
    Department("D04", "旧組織", "総務部", active=False),
]


def test_departments_without_a_recommended_nominee_are_listed_for_the_office_to_chase() -> None:
    counts = {("D01", "recommended"): 1, ("D01", "self"): 2, ("D01", "completions"): 1, ("D03", "self"): 1}

    report = build_department_report(2024, DEPARTMENTS, counts)

    by_code = {row.code: row for row in report.rows}
    assert by_code["D01"].recommended_slot_used
    assert by_code["D01"].trainees == 3
    assert by_code["D01"].completions == 1
    assert {row.code for row in report.missing_nomination} == {"D02", "D03"}
    assert report.total_trainees == 4


def test_a_nomination_from_a_department_missing_from_the_import_is_still_reported() -> None:
    report = build_department_report(2024, DEPARTMENTS, {("D99", "self"): 1})

    assert "D99" in {row.code for row in report.rows}
    assert report.total_trainees == 1


def test_baseline_rates_roll_up_by_bureau_and_managers_are_rated_separately() -> None:
    counts = {
        ("D01", "staff"): 10, ("D01", "staff_done"): 8, ("D01", "managers"): 2, ("D01", "managers_done"): 1,
        ("D02", "staff"): 10, ("D02", "staff_done"): 2,
        ("D03", "staff"): 5, ("D03", "staff_done"): 5, ("D03", "managers"): 1, ("D03", "managers_done"): 1,
    }

    report = build_baseline_report(2024, DEPARTMENTS, counts)

    bureaus = {rate_.key: rate_ for rate_ in report.bureaus}
    general_affairs = bureaus["総務部"]
    assert (general_affairs.staff, general_affairs.staff_done, general_affairs.staff_rate) == (20, 10, 0.5)
    assert bureaus["総務部"].managers_rate == 0.5
    assert bureaus["地域県民局"].staff_rate == 1.0
    assert (report.overall.staff, report.overall.staff_done, report.overall.staff_rate) == (25, 15, 0.6)
    assert (report.overall.managers, report.overall.managers_done) == (3, 2)
    assert report.overall.managers_rate == 0.6667


def test_a_rate_over_nobody_is_unknown_rather_than_zero() -> None:
    assert rate(0, 0) is None
    assert rate(1, 3) == 0.3333


def test_fiscal_years_are_written_in_reiwa_for_people() -> None:
    assert fiscal_year_label(2024) == "令和6年度 (FY2024)"
    assert fiscal_year_label(2019) == "令和元年度 (FY2019)"


def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised() -> None:
    assert neutralise_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert neutralise_cell("+1") == "'+1"
    assert neutralise_cell("-2") == "'-2"
    assert neutralise_cell("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise_cell("財政課") == "財政課"
    assert neutralise_cell(-2) == "-2"
    assert neutralise_cell(None) == ""


def test_csv_is_utf8_with_a_byte_order_mark_so_excel_reads_japanese() -> None:
    body = render_csv(["所属", "人数"], [["財政課", 3], ["=cmd", 1]])

    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig") == "所属,人数\r\n財政課,3\r\n'=cmd,1\r\n"


IN_ORGANISATION_ORDER = [  # as the HR system lists them: 総務部 first, though 地 < 総 in character codes
    Department("0201", "財政課", "総務部", position=1),
    Department("0105", "人事課", "総務部", position=2),
    Department("0900", "東青地域県民局", "地域県民局", position=3),
    Department("0050", "企画調整課", "企画政策部", position=4),
]


def test_bureaus_and_departments_follow_the_order_of_the_imported_department_list() -> None:
    counts = {(d.code, "staff"): 1 for d in IN_ORGANISATION_ORDER}

    departments = build_department_report(2024, IN_ORGANISATION_ORDER, {})
    baseline = build_baseline_report(2024, IN_ORGANISATION_ORDER, counts)

    assert [row.code for row in departments.rows] == ["0201", "0105", "0900", "0050"]
    assert [rate_.key for rate_ in baseline.bureaus] == ["総務部", "地域県民局", "企画政策部"]
    assert [rate_.key for rate_ in baseline.departments] == ["0201", "0105", "0900", "0050"]


def test_csv_booleans_are_hai_iie_and_codes_keep_their_leading_zeros_in_excel() -> None:
    assert neutralise_cell(True) == "はい"
    assert neutralise_cell(False) == "いいえ"
    assert neutralise_cell(Code("00123")) == '="00123"'
    assert neutralise_cell(Code("=cmd|' /C calc'!A0")) == "'=cmd|' /C calc'!A0"  # not a plain code: neutralised
    assert neutralise_cell("00123") == "00123"


def test_csv_times_are_japan_time_to_the_minute() -> None:
    assert jst_text("2026-07-20T04:00:00+00:00") == "2026-07-20 13:00"
    assert jst_text(None) == ""
