"""What the office pages decide by themselves (pure): the kinds of import, when an uploaded file held for
confirmation may still be imported and by whom, how a service's dry-run answer reads as a preview, the
forms' values for the training service, and the merged audit trail. The rules themselves stay in the
services: a preview only reads what the service said it would do."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from dx_shared.calendar import JST
from dx_shared.roles import OFFICES, SEES_EVERYTHING, Caller

# An uploaded file waits this long for its confirmation; then it must be uploaded (and previewed) again.
DRAFT_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class ImportKind:
    """One kind of file the offices import, and the nomination service's endpoint for it."""

    key: str
    label_ja: str
    path: str
    explanation_ja: str
    columns_ja: str


IMPORT_KINDS: dict[str, ImportKind] = {
    kind.key: kind
    for kind in (
        ImportKind("departments", "所属一覧", "/api/v1/departments/import",
                   "その年度の所属（本庁の課・出先機関）の一覧です。名簿より先に取り込みます。",
                   "所属コード、所属名、部局（任意で 有効）"),
        ImportKind("staff", "職員名簿", "/api/v1/staff/import",
                   "その年度の職員の名簿です。所属コードはその年度の所属一覧にあるものに限ります。",
                   "職員番号、氏名、所属コード（任意で 管理職）"),
        ImportKind("nominations", "推薦シート", "/api/v1/nominations/import",
                   "推薦・自薦の一覧です。1行ずつ推薦のきまりで審査され、受け付けられない行は記録されません。",
                   "職員番号、枠（推薦／自薦）（任意で 所属コード）"),
    )
}

FIELD_LABELS_JA = {
    "name": "名称・氏名",
    "bureau": "部局",
    "active": "有効",
    "department_code": "所属コード",
    "is_manager": "管理職",
}


def may_do_office_work(caller: Caller) -> bool:
    return caller.role in OFFICES


def may_read_audit_trail(caller: Caller) -> bool:
    return caller.role in SEES_EVERYTHING


# ---- uploaded files held between the preview and the confirmation --------------------------------------


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class HeldFile:
    """A file uploaded for a preview, held for the person who uploaded it until they confirm it."""

    draft_id: str
    session_key: str
    kind: str
    fiscal_year: int
    filename: str
    content: bytes
    sha256: str
    created_at: datetime
    expires_at: datetime


class DraftRefused(Exception):
    """Why a held file cannot be imported; the person uploads it again."""

    def __init__(self, status: int, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en


def confirmable(held: HeldFile | None, session_key: str, kind: str, now: datetime) -> HeldFile:
    """The held file, if this session may import it now: it exists, it is theirs, it has not expired, it
    is of the kind confirmed, and its bytes are those previewed."""
    if held is None:
        raise DraftRefused(404, "IMPORT_DRAFT_NOT_FOUND",
                           "確認待ちのファイルが見つかりません。もう一度ファイルを選んで確認してください。",
                           "No file is waiting for confirmation; upload it again.")
    if not hmac.compare_digest(held.session_key, session_key):
        raise DraftRefused(403, "IMPORT_DRAFT_NOT_YOURS",
                           "このファイルは別の方が確認中のものです。ご自身でファイルを選んで確認してください。",
                           "This file was uploaded in another person's session.")
    if now >= held.expires_at:
        raise DraftRefused(410, "IMPORT_DRAFT_EXPIRED",
                           "確認の有効期限（30分）が過ぎました。もう一度ファイルを選んで確認してください。",
                           "The preview has expired; upload the file again.")
    if held.kind != kind:
        raise DraftRefused(409, "IMPORT_DRAFT_KIND_MISMATCH",
                           "確認した取込みの種類と異なります。もう一度ファイルを選んで確認してください。",
                           "The file was previewed as another kind of import.")
    if not hmac.compare_digest(digest_of(held.content), held.sha256):
        raise DraftRefused(409, "IMPORT_DRAFT_ALTERED",
                           "確認したファイルと内容が一致しません。もう一度ファイルを選んで確認してください。",
                           "The held file no longer matches the one previewed.")
    return held


# ---- a service's dry-run answer as a preview -----------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    line: int | None
    code: str
    message_ja: str


@dataclass(frozen=True)
class Preview:
    """What an import would do (or did): rows added, changed, removed, unchanged, and every bad row."""

    kind: str
    fiscal_year: int
    rows: int = 0
    encoding: str = ""
    added: Sequence[str] = ()
    changed: Sequence[tuple[str, str]] = ()
    removed: Sequence[str] = ()
    unchanged: int = 0
    bad_rows: Sequence[BadRow] = ()
    rejected: bool = False
    applied: bool = False
    ignored_columns: Sequence[str] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @property
    def may_confirm(self) -> bool:
        return not self.rejected and self.changes_anything


def _bad_rows(items: Iterable[Mapping[str, Any]]) -> list[BadRow]:
    return [BadRow(item.get("line"), str(item.get("code") or ""), str(item.get("message_ja") or "")) for item in items]


def _fields_ja(fields: Iterable[str]) -> str:
    return "、".join(FIELD_LABELS_JA.get(name, name) for name in fields)


def preview_of(kind: str, fiscal_year: int, answer: Mapping[str, Any]) -> Preview:
    """A roster import's answer (ImportOut) or a nomination sheet's (SheetOut): in a sheet every accepted
    row adds a nomination and every refused row is a bad row with its line and reason."""
    if kind == "nominations":
        results = list(answer.get("results", []))
        accepted = [r for r in results if r.get("outcome") == "accepted"]
        refused = [r for r in results if r.get("outcome") != "accepted"]
        slot_ja = {"recommended": "推薦", "self": "自薦"}
        return Preview(
            kind=kind, fiscal_year=fiscal_year, rows=len(results), encoding=str(answer.get("encoding") or ""),
            added=[f"{r['line']}行目 職員番号 {r['staff_id']}（{slot_ja.get(r.get('slot') or '', '—')}）"
                   for r in accepted],
            bad_rows=[BadRow(r.get("line"), str(r.get("code") or ""),
                             f"職員番号 {r.get('staff_id') or '—'}：{r.get('message_ja') or r.get('code')}")
                      for r in refused],
            applied=not answer.get("dry_run", True) and bool(accepted),
        )
    return Preview(
        kind=kind, fiscal_year=fiscal_year, rows=int(answer.get("rows") or 0),
        encoding=str(answer.get("encoding") or ""),
        added=list(answer.get("added", [])),
        changed=[(str(c["key"]), _fields_ja(c.get("fields", []))) for c in answer.get("changed", [])],
        removed=list(answer.get("removed", [])),
        unchanged=int((answer.get("summary") or {}).get("unchanged") or 0),
        applied=bool(answer.get("applied")),
        ignored_columns=list(answer.get("ignored_columns", [])),
    )


def rejected_preview(kind: str, fiscal_year: int, problem: Mapping[str, Any]) -> Preview:
    """The service refused the whole file (IMPORT_REJECTED): every bad row, nothing to confirm."""
    return Preview(kind=kind, fiscal_year=fiscal_year, rows=int(problem.get("rows") or 0),
                   encoding=str(problem.get("encoding") or ""), bad_rows=_bad_rows(problem.get("bad_rows", [])),
                   rejected=True)


# ---- forms for the training service ------------------------------------------------------------


class FormInvalid(ValueError):
    def __init__(self, message_ja: str) -> None:
        super().__init__(message_ja)
        self.message_ja = message_ja


def jst_moment(text: str | None) -> str | None:
    """An <input type=datetime-local> value, read as Japan time, as RFC 3339 with its offset."""
    if not text or not text.strip():
        return None
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FormInvalid("日時の形式が正しくありません。") from exc
    return (local if local.tzinfo else local.replace(tzinfo=JST)).isoformat()


def optional_int(text: str | None, label_ja: str) -> int | None:
    if not text or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError as exc:
        raise FormInvalid(f"{label_ja}は数字で入力してください。") from exc


def session_request(form: Mapping[str, str], fiscal_year: int) -> dict[str, Any]:
    """The training service's SessionRequest from the session form."""
    title = (form.get("title") or "").strip()
    if not title:
        raise FormInvalid("研修名を入力してください。")
    audience = form.get("audience") or ""
    stage = optional_int(form.get("stage"), "ステージ") if audience == "promoter" else None
    return {
        "fiscal_year": fiscal_year,
        "title": title,
        "method": form.get("method") or "",
        "audience": audience,
        "stage": stage,
        "starts_at": jst_moment(form.get("starts_at")),
        "ends_at": jst_moment(form.get("ends_at")),
        "capacity": optional_int(form.get("capacity"), "定員"),
        "move_on": form.get("move_on") or "completed",
    }


def staff_ids_of(checked: Iterable[str], typed: str) -> list[str]:
    """Staff ids ticked in the list and typed in the box (one per line, or separated by commas or spaces),
    in order, each once."""
    typed_ids = typed.replace("、", ",").replace("，", ",").replace(",", " ").split()
    return list(dict.fromkeys(s.strip() for s in [*checked, *typed_ids] if s.strip()))


# ---- the audit trail of every service, merged ------------------------------------------------------

AUDIT_SERVICES = ("nomination", "training", "progression", "reporting")
AUDIT_SERVICE_LABELS = {
    "nomination": "推薦・名簿",
    "training": "研修・修了",
    "progression": "ステージ判定",
    "reporting": "集計",
}


@dataclass(frozen=True)
class AuditQuery:
    services: tuple[str, ...]
    since: str | None = None
    until: str | None = None
    subject: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def _day(text: str | None) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise FormInvalid("日付の形式が正しくありません（例: 2025-04-01）。") from exc


def audit_query(service: str | None, since_day: str | None, until_day: str | None, subject: str | None) -> AuditQuery:
    """From dates (Japan time, both days included) and an optional service and author to the services'
    `from`/`to`/`subject` parameters."""
    if service and service not in AUDIT_SERVICES:
        raise FormInvalid("サービスの指定が正しくありません。")
    first, last = _day(since_day), _day(until_day)
    since = datetime.combine(first, time(0), JST).isoformat() if first else None
    until = datetime.combine(last + timedelta(days=1), time(0), JST).isoformat() if last else None
    who = (subject or "").strip() or None
    params = {key: value for key, value in (("from", since), ("to", until), ("subject", who)) if value}
    return AuditQuery((service,) if service else AUDIT_SERVICES, since, until, who, params)


def merged_audit(pages: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Every service's rows, each labelled with its service, newest first."""
    rows = [{**row, "service": service} for service, items in pages.items() for row in items]
    return sorted(rows, key=lambda row: (datetime.fromisoformat(str(row["at"])), row["service"], row["id"]),
                  reverse=True)
