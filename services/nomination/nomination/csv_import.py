"""Reading the offices' CSV files: department lists, staff rosters and nomination sheets.

The files come from the HR system and from spreadsheets as the offices have them: UTF-8, UTF-8 with a
BOM, or Shift_JIS (cp932), detected rather than configured; Japanese or English headers; full-width
digits in codes. Every bad row is reported with its line number and a reason, in Japanese and English.
Pure: bytes in, domain values and problems out.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from nomination.domain import Department, Slot, StaffMember

RowT = TypeVar("RowT")

_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-]*$")

_TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "○", "〇", "◯", "はい", "有", "有効", "該当", "管理職"})
_FALSE_WORDS = frozenset(
    {"0", "false", "f", "no", "n", "×", "✕", "いいえ", "無", "無効", "非該当", "非管理職", "-", "ー", "―"}
)
_SLOT_WORDS: Mapping[str, Slot] = {
    "recommended": Slot.RECOMMENDED,
    "推薦": Slot.RECOMMENDED,
    "推薦枠": Slot.RECOMMENDED,
    "self": Slot.SELF,
    "自薦": Slot.SELF,
    "自薦枠": Slot.SELF,
}


@dataclass(frozen=True)
class Column:
    """A column the reader understands, with every header the offices' files are known to use."""

    field: str
    label_ja: str
    aliases: tuple[str, ...]
    required: bool = True


# Optional: where the portal's reminders go. A file without the column imports as before (no address).
EMAIL_ALIASES = ("メールアドレス", "連絡先メールアドレス", "メール", "電子メール", "e-mail", "email", "mail")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254

DEPARTMENT_COLUMNS = (
    Column("code", "所属コード", ("所属コード", "所属cd", "所属番号", "department_code", "code", "dept_code")),
    Column("name", "所属名", ("所属名", "所属名称", "name", "department_name")),
    Column("bureau", "部局", ("部局", "部局名", "bureau")),
    Column("active", "有効", ("有効", "有効フラグ", "active", "is_active"), required=False),
    Column("email", "連絡先メールアドレス", EMAIL_ALIASES, required=False),
)

STAFF_COLUMNS = (
    Column("staff_id", "職員番号", ("職員番号", "職員id", "職員コード", "staff_id", "employee_id")),
    Column("name", "氏名", ("氏名", "職員氏名", "名前", "name", "staff_name")),
    Column("department_code", "所属コード", ("所属コード", "所属cd", "所属番号", "department_code")),
    Column("is_manager", "管理職", ("管理職", "管理職フラグ", "is_manager", "manager"), required=False),
    Column("email", "メールアドレス", EMAIL_ALIASES, required=False),
)

NOMINATION_COLUMNS = (
    Column("staff_id", "職員番号", ("職員番号", "職員id", "職員コード", "staff_id", "employee_id")),
    Column("slot", "枠", ("枠", "区分", "推薦区分", "応募区分", "slot")),
    Column(
        "department_code",
        "所属コード",
        ("所属コード", "所属cd", "所属番号", "推薦所属", "department_code"),
        required=False,
    ),
)


@dataclass(frozen=True)
class RowProblem:
    """One reason a file or a row cannot be imported; `line` is None when it concerns the whole file."""

    line: int | None
    code: str
    message_ja: str
    message_en: str


@dataclass(frozen=True)
class ParsedFile(Generic[RowT]):
    """The rows read from a file, each with its line number, and every problem found in it."""

    encoding: str
    rows: tuple[tuple[int, RowT], ...]
    problems: tuple[RowProblem, ...]
    ignored_columns: tuple[str, ...] = ()

    @property
    def is_clean(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class NominationLine:
    """One row of a nomination sheet; `problem` is set when the row itself cannot be read."""

    line: int
    staff_id: str
    slot: Slot | None
    department_code: str | None
    problem: RowProblem | None = None


class UnreadableFile(ValueError):
    """The bytes are not text in any encoding the offices use."""


# ---- text -------------------------------------------------------------------------------------


def decode(raw: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was found to be in."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode(raw[len(codecs.BOM_UTF8) :], "utf-8"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(raw, "utf-16"), "utf-16"
    for encoding in ("utf-8", "cp932"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("neither UTF-8 nor Shift_JIS (cp932)")


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid {encoding}: {exc}") from exc


def normalise_code(text: str) -> str:
    """Codes typed in spreadsheets: full-width digits and letters become ASCII, spaces go."""
    return unicodedata.normalize("NFKC", text).strip().replace(" ", "")


def normalise_text(text: str) -> str:
    return text.strip().strip("\u3000").strip()


def _header_key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[\s_\-]", "", folded)


def _dialect_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    return "\t" if "\t" in first_line and "," not in first_line else ","


# ---- generic reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    encoding: str
    header_width: int
    positions: Mapping[str, int]
    ignored_columns: tuple[str, ...]
    records: tuple[tuple[int, tuple[str, ...]], ...]


def _file_problem(code: str, message_ja: str, message_en: str) -> RowProblem:
    return RowProblem(line=None, code=code, message_ja=message_ja, message_en=message_en)


def _read_table(raw: bytes, columns: tuple[Column, ...]) -> _Table | RowProblem:
    try:
        text, encoding = decode(raw)
    except UnreadableFile as exc:
        return _file_problem(
            "UNREADABLE_ENCODING",
            "文字コードを判別できません（UTF-8 または Shift_JIS で保存してください）。",
            f"The file cannot be read: {exc}. Save it as UTF-8 or Shift_JIS.",
        )
    try:
        records = list(_records(text))
    except csv.Error as exc:
        # A field over csv.field_size_limit() (or a broken quote) stops the reader: the whole file is refused.
        return _file_problem(
            "CSV_FIELD_TOO_LARGE",
            f"CSVの項目が長すぎるか、引用符が閉じていません（上限 {csv.field_size_limit()} 文字）。",
            f"A CSV field is too long or a quote is not closed (limit {csv.field_size_limit()} characters): "
            + str(exc)[:100],
        )
    if not records:
        return _file_problem("EMPTY_FILE", "ファイルが空です。", "The file is empty.")
    header_line, header = records[0]
    positions, ignored, problem = _match_header(header, columns, header_line)
    if problem is not None:
        return problem
    return _Table(encoding, len(header), positions, ignored, tuple(records[1:]))


def _records(text: str) -> Iterator[tuple[int, tuple[str, ...]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect_delimiter(text))
    line = 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield line, tuple(cells)
        line = reader.line_num + 1


def _match_header(
    header: tuple[str, ...], columns: tuple[Column, ...], line: int
) -> tuple[dict[str, int], tuple[str, ...], RowProblem | None]:
    alias_to_field = {_header_key(alias): column.field for column in columns for alias in column.aliases}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, title in enumerate(header):
        matched = alias_to_field.get(_header_key(title))
        if matched is None:
            if title.strip():
                ignored.append(title.strip())
            continue
        if matched in positions:
            return (
                positions,
                (),
                RowProblem(
                    line,
                    "DUPLICATE_COLUMN",
                    f"見出し「{title.strip()}」が重複しています。",
                    f"Header {title.strip()!r} appears twice.",
                ),
            )
        positions[matched] = index
    missing = [column for column in columns if column.required and column.field not in positions]
    if missing:
        names_ja = "、".join(column.label_ja for column in missing)
        names_en = ", ".join(column.field for column in missing)
        return (
            positions,
            (),
            RowProblem(
                line,
                "MISSING_COLUMN",
                f"必要な列がありません: {names_ja}",
                f"Required column(s) missing: {names_en}",
            ),
        )
    return positions, tuple(ignored), None


class _RowError(Exception):
    def __init__(self, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en


def _cells(table: _Table, cells: tuple[str, ...], columns: tuple[Column, ...]) -> dict[str, str]:
    overflow = [cell for cell in cells[table.header_width :] if cell.strip()]
    if overflow:
        extra = len(cells) - table.header_width
        raise _RowError(
            "WRONG_COLUMN_COUNT",
            f"列が見出しより {extra} 個多くあります。",
            f"The row has {extra} more cell(s) than the header.",
        )
    values: dict[str, str] = {}
    for column in columns:
        position = table.positions.get(column.field)
        value = cells[position] if position is not None and position < len(cells) else ""
        if column.required and not value.strip():
            raise _RowError(
                "MISSING_VALUE",
                f"「{column.label_ja}」が空です。",
                f"{column.field} is empty.",
            )
        values[column.field] = value
    return values


def _code(value: str, label_ja: str, label_en: str, bad_code: str) -> str:
    code = normalise_code(value)
    if not _CODE.match(code):
        raise _RowError(
            bad_code,
            f"{label_ja}「{value.strip()}」に使えない文字があります（英数字とハイフンのみ）。",
            f"{label_en} {value.strip()!r} has characters other than letters, digits and hyphens.",
        )
    return code


def _flag(value: str, *, default: bool, code: str, label_ja: str, label_en: str) -> bool:
    word = unicodedata.normalize("NFKC", value).strip().lower()
    if not word:
        return default
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise _RowError(
        code,
        f"{label_ja}の値「{value.strip()}」を判別できません（1/0、○/×、はい/いいえ）。",
        f"{label_en} value {value.strip()!r} is not a yes/no flag (1/0, true/false, ○/×).",
    )


def _email(value: str) -> str | None:
    address = unicodedata.normalize("NFKC", value).strip()
    if not address:
        return None
    if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.match(address):
        # The address itself is personal data: the message names the column, not the value.
        raise _RowError(
            "BAD_EMAIL",
            "メールアドレスの形式が正しくありません。",
            "The e-mail address is not a valid address.",
        )
    return address


def _problem(line: int, error: _RowError) -> RowProblem:
    return RowProblem(line=line, code=error.code, message_ja=error.message_ja, message_en=error.message_en)


def _duplicate(line: int, first_line: int, code: str, label_ja: str, key: str) -> RowProblem:
    return RowProblem(
        line=line,
        code=code,
        message_ja=f"{label_ja} {key} が {first_line} 行目と重複しています。",
        message_en=f"{key} repeats line {first_line}.",
    )


# ---- department lists -------------------------------------------------------------------------


def parse_departments(raw: bytes) -> ParsedFile[Department]:
    """所属一覧: code, name, bureau and (optionally) the active flag of every department of a year."""
    table = _read_table(raw, DEPARTMENT_COLUMNS)
    if isinstance(table, RowProblem):
        return ParsedFile(encoding="", rows=(), problems=(table,))
    rows: list[tuple[int, Department]] = []
    problems: list[RowProblem] = []
    first_seen: dict[str, int] = {}
    for line, cells in table.records:
        try:
            department = _department(table, cells)
        except _RowError as error:
            problems.append(_problem(line, error))
            continue
        if department.code in first_seen:
            problems.append(
                _duplicate(
                    line,
                    first_seen[department.code],
                    "DUPLICATE_DEPARTMENT_CODE",
                    "所属コード",
                    department.code,
                )
            )
            continue
        first_seen[department.code] = line
        rows.append((line, department))
    return _parsed(table, rows, problems)


def _department(table: _Table, cells: tuple[str, ...]) -> Department:
    values = _cells(table, cells, DEPARTMENT_COLUMNS)
    return Department(
        code=_code(values["code"], "所属コード", "Department code", "BAD_DEPARTMENT_CODE"),
        name=normalise_text(values["name"]),
        bureau=normalise_text(values["bureau"]),
        active=_flag(values["active"], default=True, code="BAD_ACTIVE_FLAG", label_ja="有効", label_en="active"),
        email=_email(values["email"]),
    )


# ---- staff rosters ----------------------------------------------------------------------------


def parse_roster(raw: bytes, department_codes: Collection[str]) -> ParsedFile[StaffMember]:
    """職員名簿: staff id, name, department and manager flag; departments must be that year's."""
    table = _read_table(raw, STAFF_COLUMNS)
    if isinstance(table, RowProblem):
        return ParsedFile(encoding="", rows=(), problems=(table,))
    if not department_codes:
        return ParsedFile(
            encoding=table.encoding,
            rows=(),
            problems=(
                _file_problem(
                    "NO_DEPARTMENTS",
                    "この年度の所属一覧がまだ取り込まれていません。先に所属一覧を取り込んでください。",
                    "No department list is imported for this fiscal year; import the departments first.",
                ),
            ),
        )
    rows: list[tuple[int, StaffMember]] = []
    problems: list[RowProblem] = []
    first_seen: dict[str, int] = {}
    for line, cells in table.records:
        try:
            member = _staff_member(table, cells, department_codes)
        except _RowError as error:
            problems.append(_problem(line, error))
            continue
        if member.staff_id in first_seen:
            problems.append(
                _duplicate(line, first_seen[member.staff_id], "DUPLICATE_STAFF_ID", "職員番号", member.staff_id)
            )
            continue
        first_seen[member.staff_id] = line
        rows.append((line, member))
    return _parsed(table, rows, problems)


def _staff_member(table: _Table, cells: tuple[str, ...], department_codes: Collection[str]) -> StaffMember:
    values = _cells(table, cells, STAFF_COLUMNS)
    department_code = _code(values["department_code"], "所属コード", "Department code", "BAD_DEPARTMENT_CODE")
    if department_code not in department_codes:
        raise _RowError(
            "UNKNOWN_DEPARTMENT",
            f"所属コード {department_code} はこの年度の所属一覧にありません。",
            f"Department {department_code} is not in this fiscal year's department list.",
        )
    return StaffMember(
        staff_id=_code(values["staff_id"], "職員番号", "Staff id", "BAD_STAFF_ID"),
        name=normalise_text(values["name"]),
        department_code=department_code,
        is_manager=_flag(
            values["is_manager"],
            default=False,
            code="BAD_MANAGER_FLAG",
            label_ja="管理職",
            label_en="is_manager",
        ),
        email=_email(values["email"]),
    )


def _parsed(table: _Table, rows: list[tuple[int, RowT]], problems: list[RowProblem]) -> ParsedFile[RowT]:
    if not rows and not problems:
        problems.append(_file_problem("EMPTY_FILE", "データ行がありません。", "The file has no data rows."))
    return ParsedFile(
        encoding=table.encoding,
        rows=tuple(rows),
        problems=tuple(problems),
        ignored_columns=table.ignored_columns,
    )


# ---- nomination sheets ------------------------------------------------------------------------


def parse_nomination_sheet(raw: bytes) -> ParsedFile[NominationLine]:
    """推薦・自薦の一覧: one nomination per row; a row that cannot be read is refused on its own."""
    table = _read_table(raw, NOMINATION_COLUMNS)
    if isinstance(table, RowProblem):
        return ParsedFile(encoding="", rows=(), problems=(table,))
    rows = [(line, _nomination_line(table, line, cells)) for line, cells in table.records]
    return _parsed(table, rows, [])


def _nomination_line(table: _Table, line: int, cells: tuple[str, ...]) -> NominationLine:
    position = table.positions["staff_id"]
    raw_staff_id = cells[position] if position < len(cells) else ""
    try:
        values = _cells(table, cells, NOMINATION_COLUMNS)
        department = normalise_code(values["department_code"])
        return NominationLine(
            line=line,
            staff_id=_code(values["staff_id"], "職員番号", "Staff id", "BAD_STAFF_ID"),
            slot=_slot(values["slot"]),
            department_code=_code(department, "所属コード", "Department code", "BAD_DEPARTMENT_CODE")
            if department
            else None,
        )
    except _RowError as error:
        return NominationLine(
            line=line,
            staff_id=normalise_code(raw_staff_id),
            slot=None,
            department_code=None,
            problem=_problem(line, error),
        )


def _slot(value: str) -> Slot:
    slot = _SLOT_WORDS.get(unicodedata.normalize("NFKC", value).strip().lower())
    if slot is None:
        raise _RowError(
            "BAD_SLOT",
            f"枠「{value.strip()}」を判別できません（推薦 または 自薦）。",
            f"Slot {value.strip()!r} is neither 'recommended' (推薦) nor 'self' (自薦).",
        )
    return slot
