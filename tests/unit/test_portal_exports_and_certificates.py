"""The portal's Excel downloads and 修了証 as pure functions: typed cells, filenames, certificate numbers
that cannot be made up, which progression year a certificate rests on, and the PDF's text."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from urllib.parse import unquote

import openpyxl
from pypdf import PdfReader

from dx_shared.calendar import reiwa_date_ja
from portal.certificates import (
    CertificateId,
    CertificateText,
    certificate_number,
    certificate_pdf,
    completed_stage,
    verified_number,
)
from portal.exports import baseline_sheet, content_disposition, departments_sheet, workbook_bytes

KEY = "unit-test-key-0123456789abcdef"
MADE = datetime(2026, 7, 20, 4, 0, tzinfo=UTC)


def _departments() -> dict[str, object]:
    return {
        "fiscal_year": 2026, "code": "FY2026", "label_ja": "令和8年度",
        "departments": [
            {"bureau": "総務部", "code": "012345", "name": "財政課", "active": True, "recommended_slot_used": False,
             "recommended": 0, "self_slot": 2, "trainees": 3, "completions": 1},
        ],
    }


def test_department_workbook_keeps_codes_as_text_counts_as_numbers_and_freezes_the_header() -> None:
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes(departments_sheet(_departments()), MADE)))
    sheet = book.active
    assert sheet is not None
    assert "令和8年度" in str(sheet["A1"].value)
    assert isinstance(sheet.cell(1, 9).value, datetime), "the time made is a real date-time cell"
    assert sheet.cell(1, 9).value == datetime(2026, 7, 20, 13, 0), "in Japan time"
    assert [c.value for c in sheet[2]][:3] == ["部局", "所属コード", "所属名"]
    assert sheet["B3"].value == "012345" and sheet["B3"].data_type == "s"
    assert sheet["G3"].value == 2 and sheet["G3"].data_type == "n"
    assert sheet["D3"].value == "はい"
    assert sheet.freeze_panes == "A3"
    assert sheet.column_dimensions["C"].width > sheet.column_dimensions["F"].width


def test_baseline_workbook_writes_shares_as_numbers_with_a_percent_format() -> None:
    rate = {"key": "012345", "label": "財政課", "staff": 10, "staff_done": 4, "staff_rate": 0.4,
            "managers": 2, "managers_done": 1, "managers_rate": 0.5}
    report = {"fiscal_year": 2026, "label_ja": "令和8年度", "overall": {**rate, "key": "all", "label": "全体"},
              "bureaus": [], "departments": [rate]}
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes(baseline_sheet(report), MADE))).active
    assert sheet is not None
    assert sheet["F4"].value == 0.4 and "%" in sheet["F4"].number_format
    assert sheet["B4"].value == "012345"


def test_the_download_name_is_japanese_in_filename_star_with_an_ascii_fallback() -> None:
    header = content_disposition("所属別_令和8年度.xlsx", "departments-FY2026.xlsx")
    assert header.startswith('attachment; filename="departments-FY2026.xlsx"; ')
    star = header.split("filename*=UTF-8''")[1]
    assert star.isascii() and unquote(star) == "所属別_令和8年度.xlsx"


def test_a_certificate_number_is_deterministic_and_verifies_only_untouched() -> None:
    certificate = CertificateId("0260001", 2026, 2)
    number = certificate_number(KEY, certificate)
    assert number == certificate_number(KEY, certificate)
    assert verified_number(KEY, number) == certificate
    assert verified_number("another-key", number) is None
    for forged in (number.replace("-2-", "-3-"), number.replace("0260001", "0260002"), number[:-1] + "0"
                   if not number.endswith("0") else number[:-1] + "1", "garbage", ""):
        assert verified_number(KEY, forged) is None, forged


def test_a_certificate_rests_on_a_completed_year_of_that_stage_only() -> None:
    standing = {"years": [
        {"fiscal_year": 2025, "completed": True, "completion": {"stage": 1, "completed_at": "2025-06-03T01:00:00Z"}},
        {"fiscal_year": 2026, "completed": False, "completion": None, "stage": 2},
    ]}
    assert completed_stage(standing, 2025, 1) is not None
    assert completed_stage(standing, 2025, 2) is None
    assert completed_stage(standing, 2026, 2) is None
    assert completed_stage(None, 2025, 1) is None


def test_the_reiwa_date_of_a_calendar_day() -> None:
    assert reiwa_date_ja(date(2024, 6, 3)) == "令和6年6月3日"
    assert reiwa_date_ja(date(2019, 5, 1)) == "令和元年5月1日"


def test_the_certificate_pdf_is_one_a4_page_with_its_japanese_text() -> None:
    body = certificate_pdf(CertificateText(
        staff_id="0260001", stage=1, stage_name_ja="ステージ1（業務効率化）", fiscal_year_label="令和6年度",
        completed_on=date(2024, 6, 3), number="0260001-2024-1-ABC", verify_url="http://portal/verify/0260001-2024-1-ABC",
    ))
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert round(float(box.width)) == 595 and round(float(box.height)) == 842
    text = reader.pages[0].extract_text().replace(" ", "").replace("　", "")
    for expected in ("修了証", "0260001", "令和6年6月3日", "業務効率化", "青森県DX推進担当部門", "0260001-2024-1-ABC"):
        assert expected in text, expected
