"""Who is due an e-mail reminder and what it says: the recommended-slot deadline, the fiscal year's last
weeks, recipients without an address, the demo-mode rule and the Japanese texts with their 令和 labels."""

from __future__ import annotations

from datetime import date

import pytest

from portal.reminder_rules import (
    DepartmentWithoutNomination,
    OpenTraineeYear,
    ReminderKind,
    SendingMode,
    date_in_fiscal_year,
    final_weeks_begin,
    parse_month_day,
    recommended_slot_reminder_due,
    recommended_slot_reminders,
    sending_mode,
    sessions_open_reminders,
    sessions_reminder_due,
)

JUNE_30 = (6, 30)
DEPARTMENTS = [DepartmentWithoutNomination("200200", "財政課"), DepartmentWithoutNomination("100100", "人事課")]


def trainee(staff_id: str, status: str = "in_training", open_sessions: tuple[str, ...] = ("S2",)) -> OpenTraineeYear:
    return OpenTraineeYear(staff_id, status, 1, "業務効率化", open_sessions)


def test_a_month_and_day_from_january_to_march_falls_in_the_next_calendar_year() -> None:
    assert date_in_fiscal_year(2026, (6, 30)) == date(2026, 6, 30)
    assert date_in_fiscal_year(2026, (1, 15)) == date(2027, 1, 15)


def test_the_deadline_setting_must_be_a_day_every_year_has() -> None:
    assert parse_month_day("06-30") == (6, 30)
    for wrong in ("02-29", "13-01", "6/30", ""):
        with pytest.raises(ValueError):
            parse_month_day(wrong)


def test_recommended_slot_reminders_start_on_the_deadline_and_end_with_the_fiscal_year() -> None:
    assert not recommended_slot_reminder_due(date(2026, 6, 29), 2026, JUNE_30)
    assert recommended_slot_reminder_due(date(2026, 6, 30), 2026, JUNE_30)
    assert recommended_slot_reminder_due(date(2027, 3, 31), 2026, JUNE_30)
    assert not recommended_slot_reminder_due(date(2027, 4, 1), 2026, JUNE_30)


def test_open_session_reminders_are_due_only_in_the_last_weeks_of_the_fiscal_year() -> None:
    assert final_weeks_begin(2026, 6) == date(2027, 2, 18)
    assert not sessions_reminder_due(date(2027, 2, 17), 2026, 6)
    assert sessions_reminder_due(date(2027, 2, 18), 2026, 6)
    assert sessions_reminder_due(date(2027, 3, 31), 2026, 6)


def test_each_department_without_a_recommended_nomination_and_with_an_address_is_reminded_once() -> None:
    decision = recommended_slot_reminders(date(2026, 7, 1), 2026, JUNE_30, DEPARTMENTS, {"100100": "jinji@example.jp"})
    assert [(r.kind, r.period, r.recipient) for r in decision.reminders] == [
        (ReminderKind.RECOMMENDED_SLOT_UNUSED, "FY2026", "100100")
    ]
    assert decision.without_address == 1


def test_before_the_deadline_no_department_is_reminded() -> None:
    decision = recommended_slot_reminders(date(2026, 6, 1), 2026, JUNE_30, DEPARTMENTS, {"100100": "a@example.jp"})
    assert decision.reminders == () and decision.without_address == 0


def test_the_recommended_slot_text_names_the_reiwa_year_the_department_and_the_deadline() -> None:
    (reminder,) = recommended_slot_reminders(
        date(2026, 7, 1), 2026, JUNE_30, DEPARTMENTS[1:], {"100100": "jinji@example.jp"}
    ).reminders
    assert reminder.subject == "【令和8年度】DX推進員の推薦（推薦枠）についてのお願い"
    assert reminder.body.startswith("人事課 ご担当者様")
    assert "令和8年6月30日時点で" in reminder.body
    assert reminder.address == "jinji@example.jp"


def test_only_trainees_in_training_with_sessions_open_are_reminded() -> None:
    years = [
        trainee("2600003"),
        trainee("2600001", open_sessions=()),
        trainee("2600002", status="completed", open_sessions=()),
        trainee("2600004", status="cancelled"),
        trainee("2600005", status="not_decided"),
        trainee("2600006"),
    ]
    addresses = {staff_id: f"{staff_id}@example.jp" for staff_id in ("2600001", "2600002", "2600003", "2600004")}
    decision = sessions_open_reminders(date(2027, 3, 1), 2026, 6, years, addresses, {})
    assert [r.recipient for r in decision.reminders] == ["2600003"]
    assert decision.without_address == 1  # 2600006: due, no address


def test_the_open_sessions_text_lists_the_sessions_by_title_and_the_last_day_of_the_year() -> None:
    (reminder,) = sessions_open_reminders(
        date(2027, 3, 1), 2026, 6, [trainee("2600003", open_sessions=("S2", "S1"))], {"2600003": "t@example.jp"},
        {"S1": "生成AI活用入門", "S2": "業務改善ハンズオン"},
    ).reminders
    assert reminder.kind is ReminderKind.SESSIONS_OPEN and reminder.period == "FY2026"
    assert reminder.subject == "【令和8年度】DX推進員研修の未修了の研修があります"
    assert "ステージ1（業務効率化）の修了に必要な研修のうち、次の2件" in reminder.body
    assert "・生成AI活用入門\n・業務改善ハンズオン" in reminder.body
    assert "令和9年3月31日まで" in reminder.body


def test_nothing_is_sent_in_demo_mode_unless_a_relay_is_configured() -> None:
    assert sending_mode(demo_mode=True, smtp_host=None) is SendingMode.SKIP_IN_DEMO
    assert sending_mode(demo_mode=True, smtp_host="127.0.0.1") is SendingMode.SEND
    assert sending_mode(demo_mode=False, smtp_host=None) is SendingMode.NOT_CONFIGURED
    assert sending_mode(demo_mode=False, smtp_host="smtp.pref.example.jp") is SendingMode.SEND
