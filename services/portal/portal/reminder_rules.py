"""Who is due an e-mail reminder, and what it says (pure: values in, reminders out).

Two kinds, each sent at most once per recipient per fiscal year (the period):
- a department that has not used its recommended slot (推薦枠, POLICY.md N1) by the configured date;
- a trainee whose stage still has required sessions open (P2, P3) in the fiscal year's last weeks.

The texts are Japanese, as the prefecture's offices write to their staff; fiscal years are 令和 labels.
A recipient whose address is unknown is left out (and counted), never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from dx_shared.calendar import fiscal_year_code, fiscal_year_end, fiscal_year_label_ja, reiwa_date_ja


class ReminderKind(StrEnum):
    RECOMMENDED_SLOT_UNUSED = "recommended_slot_unused"
    SESSIONS_OPEN = "sessions_open"


class SendingMode(StrEnum):
    SEND = "send"
    SKIP_IN_DEMO = "skip_in_demo"  # demo mode without a relay: decide and report, send nothing
    NOT_CONFIGURED = "not_configured"  # outside demo mode a missing relay is a configuration error


def sending_mode(demo_mode: bool, smtp_host: str | None) -> SendingMode:
    if smtp_host:
        return SendingMode.SEND
    return SendingMode.SKIP_IN_DEMO if demo_mode else SendingMode.NOT_CONFIGURED


@dataclass(frozen=True)
class Reminder:
    kind: ReminderKind
    period: str  # `FY2026`: the once-per-period key, with kind and recipient
    recipient: str  # department code or staff id (what is recorded; never the address)
    address: str
    subject: str
    body: str


@dataclass(frozen=True)
class DepartmentWithoutNomination:
    code: str
    name: str


@dataclass(frozen=True)
class OpenTraineeYear:
    """A trainee's year as the reports show it: status, stage and the required sessions not yet met."""

    staff_id: str
    status: str  # reporting's trainee-year status: in_training, completed, finished, cancelled, not_decided
    stage: int | None
    stage_name_ja: str | None
    open_sessions: tuple[str, ...]  # session ids required and not met


@dataclass(frozen=True)
class Decision:
    reminders: tuple[Reminder, ...]
    without_address: int  # due, but no address is known: the office should complete the list


def parse_month_day(text: str) -> tuple[int, int]:
    """`06-30` → (6, 30); raises ValueError for anything that is not a day of the year (29 February too,
    which most fiscal years do not have)."""
    month_text, _, day_text = text.partition("-")
    month, day = int(month_text), int(day_text)
    date(2001, month, day)
    return month, day


def date_in_fiscal_year(fiscal_year: int, month_day: tuple[int, int]) -> date:
    """A month and day of the fiscal year: April–December in its first calendar year, January–March in the next."""
    month, day = month_day
    return date(fiscal_year if month >= 4 else fiscal_year + 1, month, day)


def last_day_of(fiscal_year: int) -> date:
    return fiscal_year_end(fiscal_year).date() - timedelta(days=1)


def final_weeks_begin(fiscal_year: int, weeks: int) -> date:
    return fiscal_year_end(fiscal_year).date() - timedelta(weeks=weeks)


def recommended_slot_reminder_due(today: date, fiscal_year: int, deadline: tuple[int, int]) -> bool:
    """From the deadline (inclusive: on that day the slot is still unused) to the end of the fiscal year."""
    return date_in_fiscal_year(fiscal_year, deadline) <= today <= last_day_of(fiscal_year)


def sessions_reminder_due(today: date, fiscal_year: int, weeks: int) -> bool:
    return final_weeks_begin(fiscal_year, weeks) <= today <= last_day_of(fiscal_year)


def trainee_has_open_sessions(year: OpenTraineeYear) -> bool:
    return year.status == "in_training" and bool(year.open_sessions)


def recommended_slot_reminders(
    today: date,
    fiscal_year: int,
    deadline: tuple[int, int],
    departments: Iterable[DepartmentWithoutNomination],
    addresses: Mapping[str, str],
) -> Decision:
    if not recommended_slot_reminder_due(today, fiscal_year, deadline):
        return Decision((), 0)
    due = sorted(departments, key=lambda department: department.code)
    return Decision(
        tuple(
            Reminder(
                ReminderKind.RECOMMENDED_SLOT_UNUSED, fiscal_year_code(fiscal_year), department.code,
                addresses[department.code], *recommended_slot_text(fiscal_year, department.name, deadline),
            )
            for department in due
            if department.code in addresses
        ),
        sum(1 for department in due if department.code not in addresses),
    )


def sessions_open_reminders(
    today: date,
    fiscal_year: int,
    weeks: int,
    trainee_years: Iterable[OpenTraineeYear],
    addresses: Mapping[str, str],
    session_titles: Mapping[str, str],
) -> Decision:
    if not sessions_reminder_due(today, fiscal_year, weeks):
        return Decision((), 0)
    due = sorted((year for year in trainee_years if trainee_has_open_sessions(year)), key=lambda year: year.staff_id)
    return Decision(
        tuple(
            Reminder(
                ReminderKind.SESSIONS_OPEN, fiscal_year_code(fiscal_year), year.staff_id, addresses[year.staff_id],
                *sessions_open_text(fiscal_year, year, session_titles),
            )
            for year in due
            if year.staff_id in addresses
        ),
        sum(1 for year in due if year.staff_id not in addresses),
    )


# ---- the texts -------------------------------------------------------------------------------------

SIGNATURE = "\n\n――――――――――――――――\nDX推進担当部門（デジタル人財育成）\nこのメールは送信専用です。"


def recommended_slot_text(fiscal_year: int, department_name: str, deadline: tuple[int, int]) -> tuple[str, str]:
    label = fiscal_year_label_ja(fiscal_year)
    by = reiwa_date_ja(date_in_fiscal_year(fiscal_year, deadline))
    subject = f"【{label}】DX推進員の推薦（推薦枠）についてのお願い"
    body = (
        f"{department_name} ご担当者様\n\n"
        f"{label}のDX推進員の推薦枠（各所属1名）について、{by}時点で貴所属からの推薦がまだ登録されていません。\n"
        "新たにDX推進員となる職員（これまでDX推進員になったことのない方）を1名、ポータルの「所属の推薦」から"
        "推薦してください。\n"
        "既に調整中の場合や、推薦を見送る事情がある場合は、DX推進担当部門までご連絡ください。"
        f"{SIGNATURE}"
    )
    return subject, body


def sessions_open_text(
    fiscal_year: int, year: OpenTraineeYear, session_titles: Mapping[str, str]
) -> tuple[str, str]:
    label = fiscal_year_label_ja(fiscal_year)
    stage = f"ステージ{year.stage}（{year.stage_name_ja}）" if year.stage_name_ja else f"ステージ{year.stage}"
    lines = "\n".join(f"・{session_titles.get(session, session)}" for session in sorted(year.open_sessions))
    subject = f"【{label}】DX推進員研修の未修了の研修があります"
    body = (
        f"職員番号 {year.staff_id} の方へ\n\n"
        f"{label}の{stage}の修了に必要な研修のうち、次の{len(year.open_sessions)}件がまだ修了になっていません。\n\n"
        f"{lines}\n\n"
        f"年度内（{reiwa_date_ja(last_day_of(fiscal_year))}まで）に受講を終えてください。"
        "受講済みなのにここに挙がっている場合は、研修の担当（人財育成・人事担当部門）までお知らせください。"
        f"{SIGNATURE}"
    )
    return subject, body
