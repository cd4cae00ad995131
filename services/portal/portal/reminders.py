"""The reminder job: `python -m portal.reminders run [--today YYYY-MM-DD] [--dry-run]` (a daily CronJob).

Reads what it needs from the services' public APIs with its own client-credentials token (client
`dx-portal-reminders`: dx_office, read scopes only, the contact addresses included), lets
`portal.reminder_rules` decide who is due, and sends each reminder through the SMTP relay. A send is
recorded in the portal's schema in the same transaction as the hand-over to the relay: the row is
inserted first (a second run, or a second copy of the job, finds it and sends nothing), and a refused or
failed send rolls it back, so the next run tries again. Addresses and names never reach the log.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import httpx

from dx_shared.calendar import fiscal_year_code, fiscal_year_of_date, to_jst
from dx_shared.client_credentials import TokenNotGranted, client_token_async
from dx_shared.database import create_pool, ensure_database, migrate
from dx_shared.logging import configure_logging, get_logger
from dx_shared.roles import Scope
from dx_shared.settings import Settings, get_settings
from portal.reminder_rules import (
    DepartmentWithoutNomination,
    OpenTraineeYear,
    Reminder,
    SendingMode,
    parse_month_day,
    recommended_slot_reminder_due,
    recommended_slot_reminders,
    sending_mode,
    sessions_open_reminders,
    sessions_reminder_due,
)
from portal.services_api import ServiceRefused, ServicesApi, ServiceUnavailable

SERVICE = "portal"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
READ_SCOPES = (
    Scope.REPORTS_READ, Scope.NOMINATIONS_READ, Scope.PROGRESS_READ, Scope.TRAINING_READ, Scope.CONTACTS_READ
)
PAGE_SIZE = 1000
PARALLEL_READS = 8

log = get_logger(__name__)


@dataclass
class Outcome:
    due: int = 0
    without_address: int = 0
    sent: int = 0
    already_sent: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def line(self, fiscal_year: int, mode: str) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items())) or "none"
        return (
            f"reminders {fiscal_year_code(fiscal_year)} [{mode}]: due {self.due} ({kinds}), "
            f"without address {self.without_address}, sent {self.sent}, already sent {self.already_sent}, "
            f"failed {self.failed}"
        )


class Progress:
    """One line on stderr that says where the job is (a person watching a manual run sees it move)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def say(self, text: str) -> None:
        print(f"reminders: {text}", file=self._out, flush=True)


# ---- reading the services ------------------------------------------------------------------------


async def _addresses(api: ServicesApi, token: str, fiscal_year: int) -> tuple[dict[str, str], dict[str, str]]:
    contacts = await api.get("nomination", "/api/v1/contacts", token, fiscal_year=fiscal_year)
    departments = {entry["key"]: entry["email"] for entry in contacts["departments"]}
    staff = {entry["key"]: entry["email"] for entry in contacts["staff"]}
    return departments, staff


async def _departments_without_nomination(
    api: ServicesApi, token: str, fiscal_year: int
) -> list[DepartmentWithoutNomination]:
    report = await api.get("reporting", "/api/v1/reports/departments", token, fiscal_year=fiscal_year)
    return [DepartmentWithoutNomination(row["code"], row["name"]) for row in report["missing_nomination"]]


async def _nominated_staff(api: ServicesApi, token: str, fiscal_year: int) -> list[str]:
    staff: set[str] = set()
    page = 1
    while True:
        found = await api.get("nomination", "/api/v1/nominations", token, fiscal_year=fiscal_year,
                              status="active", page=page, page_size=PAGE_SIZE)
        staff.update(item["staff_id"] for item in found["items"])
        if page * PAGE_SIZE >= found["total"]:
            return sorted(staff)
        page += 1


def _trainee_year(staff_id: str, report: dict[str, Any] | None, fiscal_year: int) -> OpenTraineeYear | None:
    year = next((y for y in (report or {}).get("years", []) if y["fiscal_year"] == fiscal_year), None)
    if year is None:
        return None
    done = set(year["sessions_done"])
    return OpenTraineeYear(
        staff_id=staff_id, status=year["status"], stage=year["stage"], stage_name_ja=year.get("stage_name_ja"),
        open_sessions=tuple(session for session in year["sessions_required"] if session not in done),
    )


async def _trainee_years(
    api: ServicesApi, token: str, fiscal_year: int, progress: Progress
) -> list[OpenTraineeYear]:
    staff = await _nominated_staff(api, token, fiscal_year)
    gate = asyncio.Semaphore(PARALLEL_READS)
    read = 0

    async def one(staff_id: str) -> OpenTraineeYear | None:
        nonlocal read
        async with gate:
            report = await api.get_or_none("reporting", f"/api/v1/reports/trainees/{staff_id}", token)
        read += 1
        if read % 100 == 0 or read == len(staff):
            progress.say(f"trainees read {read}/{len(staff)}")
        return _trainee_year(staff_id, report, fiscal_year)

    years = await asyncio.gather(*(one(staff_id) for staff_id in staff))
    return [year for year in years if year is not None]


async def _session_titles(api: ServicesApi, token: str, fiscal_year: int) -> dict[str, str]:
    sessions = await api.get("training", "/api/v1/sessions", token, fiscal_year=fiscal_year)
    return {session["session_id"]: session["title"] for session in sessions}


async def due_reminders(
    settings: Settings, today: date, progress: Progress
) -> tuple[int, list[Reminder], int]:
    """The fiscal year, every reminder due today (sent or not), and how many were due without an address."""
    fiscal_year = fiscal_year_of_date(today)
    deadline = parse_month_day(settings.reminder_nomination_deadline)
    weeks = settings.reminder_final_weeks
    slot_due = recommended_slot_reminder_due(today, fiscal_year, deadline)
    sessions_due = sessions_reminder_due(today, fiscal_year, weeks)
    progress.say(
        f"{today.isoformat()} is in {fiscal_year_code(fiscal_year)}; recommended-slot reminders "
        f"{'due' if slot_due else 'not due'}, open-session reminders {'due' if sessions_due else 'not due'}"
    )
    if not (slot_due or sessions_due):
        return fiscal_year, [], 0
    token = await client_token_async(
        settings, [scope.value for scope in READ_SCOPES],
        client_id=settings.reminder_client_id, secret=settings.reminder_client_secret,
    )
    reminders: list[Reminder] = []
    without_address = 0
    async with httpx.AsyncClient(timeout=settings.portal_service_timeout_seconds) as http:
        api = ServicesApi(http, settings)
        department_addresses, staff_addresses = await _addresses(api, token, fiscal_year)
        if slot_due:
            progress.say("reading the department report")
            decided = recommended_slot_reminders(
                today, fiscal_year, deadline, await _departments_without_nomination(api, token, fiscal_year),
                department_addresses,
            )
            reminders.extend(decided.reminders)
            without_address += decided.without_address
        if sessions_due:
            progress.say("reading the trainees' progress")
            decided = sessions_open_reminders(
                today, fiscal_year, weeks, await _trainee_years(api, token, fiscal_year, progress),
                staff_addresses, await _session_titles(api, token, fiscal_year),
            )
            reminders.extend(decided.reminders)
            without_address += decided.without_address
    return fiscal_year, reminders, without_address


# ---- sending once ----------------------------------------------------------------------------------


def email_message(reminder: Reminder, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = reminder.subject
    message["From"] = sender
    message["To"] = reminder.address
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # base64 keeps the Japanese text intact through relays that are not 8-bit clean.
    message.set_content(reminder.body, charset="utf-8", cte="base64")
    return message


def smtp_send(settings: Settings, message: EmailMessage) -> None:
    """Hands one message to the relay; any refusal raises (smtplib.SMTPException or OSError)."""
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message)


async def send_once(pool: asyncpg.Pool, settings: Settings, reminder: Reminder) -> bool:
    """True when sent now, False when an earlier run already sent it. Raises when the relay refused it,
    and then nothing is recorded."""
    async with pool.acquire() as conn, conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO reminders_sent (kind, period, recipient, sent_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            reminder.kind.value, reminder.period, reminder.recipient, datetime.now(UTC),
        )
        if not first:
            return False
        await asyncio.to_thread(smtp_send, settings, email_message(reminder, settings.reminder_from))
    return True


async def run(settings: Settings, today: date, *, dry_run: bool, out: TextIO = sys.stdout,
              err: TextIO = sys.stderr) -> int:
    """The exit status: 0 done, 1 some reminder could not be sent (retried next run), 2 not configured."""
    progress = Progress(err)
    mode = sending_mode(settings.demo_mode, settings.smtp_host)
    if mode is SendingMode.NOT_CONFIGURED and not dry_run:
        progress.say("DX_SMTP_HOST is not set: nothing can be sent (set it, or run with --dry-run)")
        return 2
    fiscal_year, reminders, without_address = await due_reminders(settings, today, progress)
    outcome = Outcome(due=len(reminders), without_address=without_address)
    for reminder in reminders:
        outcome.by_kind[reminder.kind.value] = outcome.by_kind.get(reminder.kind.value, 0) + 1
    if dry_run or mode is not SendingMode.SEND:
        label = "dry run" if dry_run else "demo mode, no SMTP host: nothing sent"
        print(outcome.line(fiscal_year, label), file=out, flush=True)
        return 0
    await ensure_database(settings.database_url_of(SERVICE))
    pool = await create_pool(settings.database_url_of(SERVICE), SERVICE, min_size=1, max_size=2)
    try:
        await migrate(pool, SERVICE, MIGRATIONS_DIR)
        for number, reminder in enumerate(reminders, start=1):
            try:
                if await send_once(pool, settings, reminder):
                    outcome.sent += 1
                else:
                    outcome.already_sent += 1
            except (smtplib.SMTPException, OSError) as exc:
                outcome.failed += 1
                log.warning("reminder_not_sent", kind=reminder.kind.value, error=type(exc).__name__)
            if number % 50 == 0 or number == len(reminders):
                progress.say(f"sent {outcome.sent}, already sent {outcome.already_sent}, failed {outcome.failed}"
                             f" ({number}/{len(reminders)})")
    finally:
        await pool.close()
    log.info("reminders_run", fiscal_year=fiscal_year, due=outcome.due, sent=outcome.sent,
             already_sent=outcome.already_sent, failed=outcome.failed, without_address=outcome.without_address)
    print(outcome.line(fiscal_year, "sent"), file=out, flush=True)
    return 1 if outcome.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.reminders", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="send the reminders due today (each once per period)")
    run_parser.add_argument("--today", type=date.fromisoformat, default=None,
                            help="the day to judge by, YYYY-MM-DD (default: today in Japan)")
    run_parser.add_argument("--dry-run", action="store_true", help="decide and count, send and record nothing")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging("portal-reminders", settings.log_level, settings.log_json)
    today = args.today or _today_in_japan()
    try:
        return asyncio.run(run(settings, today, dry_run=args.dry_run))
    except (TokenNotGranted, ServiceUnavailable, httpx.HTTPError) as exc:
        print(f"reminders: the services or the identity provider did not answer ({type(exc).__name__}); "
              "nothing was recorded, run again later", file=sys.stderr)
        return 3
    except ServiceRefused as refused:
        print(f"reminders: a service refused the job's client ({refused.status} {refused.code}); "
              "check its scopes and role", file=sys.stderr)
        return 3


def _today_in_japan() -> date:
    return to_jst(datetime.now(UTC)).date()


if __name__ == "__main__":
    sys.exit(main())
