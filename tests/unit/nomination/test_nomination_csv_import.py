"""Reading the offices' CSV files: encodings, headers, full-width digits and every bad row."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from nomination.csv_import import decode, parse_departments, parse_nomination_sheet, parse_roster
from nomination.domain import Department, Slot, StaffMember

DATA = Path(__file__).parents[2] / "data" / "nomination"
DEPARTMENT_CODES = {"0101", "0102", "0201"}


def problem_codes_by_line(parsed: object) -> dict[int | None, str]:
    return {problem.line: problem.code for problem in parsed.problems}  # type: ignore[attr-defined]


def test_a_shift_jis_department_list_with_japanese_headers_is_read() -> None:
    parsed = parse_departments((DATA / "departments_2024_sjis.csv").read_bytes())

    assert parsed.encoding == "cp932"
    assert parsed.is_clean
    departments = dict(parsed.rows)
    assert departments[2] == Department(code="0101", name="総務部総務課", bureau="総務部", active=True)
    assert departments[4].active is True
    assert departments[7] == Department(
        code="9901", name="旧農林水産部農林水産政策課", bureau="農林水産部", active=False
    )


def test_full_width_digits_in_codes_are_normalised() -> None:
    parsed = parse_roster((DATA / "staff_2024_sjis.csv").read_bytes(), {"0101", "0102", "0201", "0301", "0401", "9901"})

    first = dict(parsed.rows)[2]
    assert first == StaffMember(staff_id="001001", name="青森　太郎", department_code="0101", is_manager=False)


def test_a_shift_jis_roster_reads_manager_flags_and_ignores_unknown_columns() -> None:
    parsed = parse_roster((DATA / "staff_2024_sjis.csv").read_bytes(), {"0101", "0102", "0201", "0301", "0401", "9901"})

    assert parsed.is_clean
    managers = {member.staff_id for _, member in parsed.rows if member.is_manager}
    assert managers == {"001002", "001005"}
    assert parsed.ignored_columns == ("備考",)


def test_a_utf8_file_with_bom_and_english_headers_is_read() -> None:
    parsed = parse_departments((DATA / "departments_2024_utf8_bom.csv").read_bytes())

    assert parsed.encoding == "utf-8-sig"
    assert [department.code for _, department in parsed.rows] == ["0101", "0102", "0201"]


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("所属コード,所属名,部局\n0101,総務課,総務部\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "所属コード,所属名,部局\n".encode(), "utf-8-sig"),
        ("所属コード,所属名,部局\n0101,総務課,総務部\n".encode("cp932"), "cp932"),
        ("所属コード,所属名,部局\n".encode("utf-16"), "utf-16"),
    ],
)
def test_the_encoding_is_detected_not_configured(raw: bytes, encoding: str) -> None:
    text, found = decode(raw)

    assert found == encoding
    assert text.lstrip("\ufeff").startswith("所属コード")


def test_a_file_in_no_known_encoding_is_refused_as_a_whole() -> None:
    parsed = parse_departments(b"\x82\xa0\xff\xfe\x00\x81")

    assert problem_codes_by_line(parsed) == {None: "UNREADABLE_ENCODING"}
    assert parsed.rows == ()


def test_every_kind_of_bad_roster_row_is_reported_with_its_line_and_reason() -> None:
    parsed = parse_roster((DATA / "staff_2024_bad_rows.csv").read_bytes(), DEPARTMENT_CODES)

    assert problem_codes_by_line(parsed) == {
        3: "MISSING_VALUE",
        4: "BAD_MANAGER_FLAG",
        5: "UNKNOWN_DEPARTMENT",
        6: "DUPLICATE_STAFF_ID",
        7: "BAD_STAFF_ID",
        8: "BAD_DEPARTMENT_CODE",
        9: "WRONG_COLUMN_COUNT",
        10: "MISSING_VALUE",
    }
    assert [line for line, _ in parsed.rows] == [2]
    assert all(problem.message_ja and problem.message_en for problem in parsed.problems)


def test_a_duplicate_staff_id_names_the_line_it_repeats() -> None:
    parsed = parse_roster((DATA / "staff_2024_bad_rows.csv").read_bytes(), DEPARTMENT_CODES)

    duplicate = next(problem for problem in parsed.problems if problem.code == "DUPLICATE_STAFF_ID")
    assert "2" in duplicate.message_ja and "line 2" in duplicate.message_en


def test_every_kind_of_bad_department_row_is_reported_with_its_line_and_reason() -> None:
    parsed = parse_departments((DATA / "departments_2024_bad_rows.csv").read_bytes())

    assert problem_codes_by_line(parsed) == {
        3: "DUPLICATE_DEPARTMENT_CODE",
        4: "BAD_ACTIVE_FLAG",
        5: "MISSING_VALUE",
        6: "BAD_DEPARTMENT_CODE",
    }


def test_a_missing_required_column_is_reported_on_the_header_line() -> None:
    parsed = parse_roster((DATA / "staff_2024_missing_column.csv").read_bytes(), DEPARTMENT_CODES)

    [problem] = parsed.problems
    assert (problem.line, problem.code) == (1, "MISSING_COLUMN")
    assert "氏名" in problem.message_ja and "name" in problem.message_en


def test_a_roster_for_a_year_without_departments_is_refused_as_a_whole() -> None:
    parsed = parse_roster((DATA / "staff_2024_sjis.csv").read_bytes(), set())

    assert problem_codes_by_line(parsed) == {None: "NO_DEPARTMENTS"}


def test_an_empty_file_is_refused() -> None:
    assert problem_codes_by_line(parse_departments(b"")) == {None: "EMPTY_FILE"}
    assert problem_codes_by_line(parse_departments("所属コード,所属名,部局\r\n".encode())) == {None: "EMPTY_FILE"}


def test_a_header_naming_the_same_column_twice_is_refused() -> None:
    parsed = parse_departments("所属コード,department_code,所属名,部局\n0101,0101,総務課,総務部\n".encode())

    assert problem_codes_by_line(parsed) == {1: "DUPLICATE_COLUMN"}


def test_headers_are_matched_whatever_their_width_case_or_spacing() -> None:
    parsed = parse_departments("Department Code,ＮＡＭＥ, Bureau \n0101,総務課,総務部\n".encode())

    assert dict(parsed.rows)[2] == Department(code="0101", name="総務課", bureau="総務部")


def test_blank_lines_are_skipped_and_line_numbers_stay_those_of_the_file() -> None:
    parsed = parse_departments("所属コード,所属名,部局\n\n0101,総務課,総務部\n,,\n0102,人事課,\n".encode())

    assert [line for line, _ in parsed.rows] == [3]
    assert problem_codes_by_line(parsed) == {5: "MISSING_VALUE"}


def test_a_tab_separated_export_is_read() -> None:
    parsed = parse_departments("所属コード\t所属名\t部局\n0101\t総務課\t総務部\n".encode("utf-16"))

    assert [department.code for _, department in parsed.rows] == ["0101"]


def test_a_nomination_sheet_reads_each_row_with_its_slot_and_marks_unreadable_rows() -> None:
    parsed = parse_nomination_sheet((DATA / "nominations_2024_sjis.csv").read_bytes())

    lines = dict(parsed.rows)
    assert lines[2].slot is Slot.RECOMMENDED and lines[2].department_code == "0101"
    assert lines[5].slot is Slot.SELF and lines[5].department_code is None
    assert lines[8].problem is not None and lines[8].problem.code == "BAD_SLOT"
    assert lines[8].staff_id == "001004"


def test_an_optional_email_column_gives_reminder_addresses_and_a_file_without_it_reads_as_before() -> None:
    departments = parse_departments(
        "所属コード,所属名,部局,連絡先メールアドレス\n0101,人事課,総務部,jinji@pref.example.jp\n0102,財政課,総務部,\n"
        .encode("cp932")
    )
    assert departments.is_clean
    assert [row.email for _, row in departments.rows] == ["jinji@pref.example.jp", None]
    roster = parse_roster("職員番号,氏名,所属コード,E-mail\n001001,青森 太郎,0101,ｔａｒｏ@pref.example.jp\n".encode(),
                          {"0101"})
    assert dict(roster.rows)[2].email == "taro@pref.example.jp", "full-width typing is normalised"
    without = parse_departments("所属コード,所属名,部局\n0101,人事課,総務部\n".encode())
    assert dict(without.rows)[2].email is None


def test_a_malformed_email_is_reported_without_repeating_the_address() -> None:
    parsed = parse_roster("職員番号,氏名,所属コード,メールアドレス\n001001,青森 太郎,0101,taro at pref\n".encode(),
                          {"0101"})
    assert problem_codes_by_line(parsed) == {2: "BAD_EMAIL"}
    assert all("taro" not in problem.message_ja + problem.message_en for problem in parsed.problems)
