"""Reading a CSV backfill of past completions (UTF-8 with or without BOM, or Shift_JIS).

Columns (English or Japanese headers): `session_id` (研修ID), `staff_id` (職員番号), `occurred_at`
(修了日時 — an ISO date-time; without an offset it is Japan time; a bare date means that day in Japan),
and optionally `success` (合否: true/false/合格/不合格) and `score` (得点).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time

from dx_shared.calendar import JST

HEADER_ALIASES = {
    "session_id": "session_id",
    "研修id": "session_id",
    "研修ｉｄ": "session_id",
    "staff_id": "staff_id",
    "職員番号": "staff_id",
    "occurred_at": "occurred_at",
    "修了日時": "occurred_at",
    "修了日": "occurred_at",
    "success": "success",
    "合否": "success",
    "score": "score",
    "得点": "score",
}
REQUIRED = ("session_id", "staff_id", "occurred_at")
TRUE_WORDS = {"true", "1", "yes", "合格", "passed"}
FALSE_WORDS = {"false", "0", "no", "不合格", "failed"}


class BackfillUnreadable(ValueError):
    status = 400
    code = "CSV_UNREADABLE"
    title_en = "The CSV cannot be read"
    title_ja = "CSVを読み取れません"


class BackfillFieldTooLarge(BackfillUnreadable):
    status = 422
    code = "CSV_FIELD_TOO_LARGE"
    title_en = "A CSV field is longer than the CSV reader accepts; nothing was imported"
    title_ja = "CSVの項目が長すぎるため、取り込みませんでした"


# A row's error names what was wrong; it quotes at most this much of the cell.
MAX_QUOTED = 80


@dataclass(frozen=True)
class BackfillRow:
    line: int
    session_id: str
    staff_id: str
    occurred_at: datetime
    success: bool | None = None
    score: float | None = None


@dataclass(frozen=True)
class BackfillRowError:
    line: int
    code: str
    detail: str


def decode_csv(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BackfillUnreadable("neither UTF-8 nor Shift_JIS")


def read_backfill(raw: bytes) -> list[BackfillRow | BackfillRowError]:
    reader = csv.reader(io.StringIO(decode_csv(raw)))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BackfillFieldTooLarge(f"line 1: {exc}") from None
    if header is None:
        raise BackfillUnreadable("the CSV is empty")
    columns = [HEADER_ALIASES.get(name.strip().lower()) for name in header]
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise BackfillUnreadable(f"missing column(s): {', '.join(missing)}")
    rows: list[BackfillRow | BackfillRowError] = []
    try:
        for line, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False) if name}
            rows.append(_row(line, values))
    except csv.Error as exc:
        # The reader refuses a field over csv.field_size_limit() (or a broken quote): the file as a whole.
        raise BackfillFieldTooLarge(f"line {reader.line_num}: {exc}") from None
    return rows


def _row(line: int, values: dict[str, str]) -> BackfillRow | BackfillRowError:
    if not values.get("session_id") or not values.get("staff_id"):
        return BackfillRowError(line, "MISSING_VALUE", "session_id and staff_id are required")
    try:
        occurred_at = parse_moment(values.get("occurred_at", ""))
        success = _flag(values.get("success", ""))
        score = float(values["score"]) if values.get("score") else None
    except ValueError as exc:
        return BackfillRowError(line, "INVALID_VALUE", _clip(str(exc)))
    return BackfillRow(line, values["session_id"], values["staff_id"], occurred_at, success, score)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "…"


def parse_moment(text: str) -> datetime:
    """An ISO date-time (Japan time when it has no offset) or a bare date (that day in Japan)."""
    if not text:
        raise ValueError("occurred_at is required")
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text.replace("/", "-")), time(0, 0), tzinfo=JST)
    moment = datetime.fromisoformat(text.replace("/", "-"))
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def _flag(text: str) -> bool | None:
    word = text.strip().lower()
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"success {_clip(text)!r} is neither true nor false")
