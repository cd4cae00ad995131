"""E-mail reminders end to end: the job reads the running services with its own client-credentials token and
sends through a real SMTP server (aiosmtpd, its own process); the test reads what arrived.

A department without a recommended nomination and a trainee with a required session still open are each
reminded once however often the job runs; a send the relay refuses is not recorded and arrives on the next
run; the Japanese subject and body decode as written; in demo mode without a relay nothing is sent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dx_shared.calendar import JST, fiscal_year_label_ja
from tests.integration.portal.conftest import (
    ARTIFACTS,
    COLLEAGUE,
    OTHER_DEPARTMENT,
    OTHER_TRAINEE,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    running_portal,
)
from tests.support.identity import bearer
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.system import ROOT, RunningSystem
from tests.support.webhooks import sign_webhook

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OWN_CONTACT, OTHER_CONTACT = "dx-suishin@pref.example.jp", "zaisei@pref.example.jp"
ADDRESS = {TRAINEE: "staff-one@pref.example.jp", OTHER_TRAINEE: "staff-two@pref.example.jp"}
SESSIONS = {"REM-S1": "ステージ1 業務効率化 e-ラーニング", "REM-S2": "ステージ1 業務改善ハンズオン"}
IN_THE_LAST_WEEKS = date(YEAR + 1, 3, 1)


@pytest.fixture(scope="module")
async def reminder_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-reminder-logs") as system:
        _set_the_scene(system)
        yield system


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path / "smtp") as server:
        yield server


def _set_the_scene(system: RunningSystem) -> None:
    """The lists again with their optional e-mail columns; stage 1 needs two sessions; TRAINEE (self slot)
    completes both, OTHER_TRAINEE (recommended by OTHER_DEPARTMENT) only the first. OWN_DEPARTMENT has
    no recommended nomination."""
    departments = (
        "所属コード,所属名,部局,連絡先メールアドレス\n"
        f"{OWN_DEPARTMENT},DX推進課,企画政策部,{OWN_CONTACT}\n{OTHER_DEPARTMENT},財政課,総務部,{OTHER_CONTACT}\n"
    )
    roster = (
        "職員番号,氏名,所属コード,メールアドレス\n"
        f"{TRAINEE},職員 一,{OWN_DEPARTMENT},{ADDRESS[TRAINEE]}\n{COLLEAGUE},職員 三,{OWN_DEPARTMENT},\n"
        f"{OTHER_TRAINEE},職員 二,{OTHER_DEPARTMENT},{ADDRESS[OTHER_TRAINEE]}\n"
    )
    with httpx.Client(headers=system.headers, timeout=30) as http:
        for path, body in (("departments", departments), ("staff", roster)):
            imported = http.post(system.url("nomination", f"/api/v1/{path}/import"), params={"fiscal_year": YEAR},
                                 content=body.encode("cp932"), headers={"content-type": "text/csv"})
            assert imported.status_code == 200, imported.text
            assert "メール" not in imported.text and "@" not in imported.text, "the import answer shows no address"
        applied = http.post(system.url("nomination", "/api/v1/nominations"),
                            json={"staff_id": TRAINEE, "fiscal_year": YEAR, "slot": "self"})
        assert applied.status_code == 201, applied.text
        for session_id, title in SESSIONS.items():
            scheduled = http.post(system.url("training", "/api/v1/sessions"), json={
                "session_id": session_id, "fiscal_year": YEAR, "method": "e_learning", "audience": "promoter",
                "stage": 1, "title": title, "move_on": "completed",
            })
            assert scheduled.status_code == 201, scheduled.text
        curriculum = http.put(system.url("training", f"/api/v1/curricula/{YEAR}/1"),
                              json={"session_ids": list(SESSIONS)})
        assert curriculum.status_code == 200, curriculum.text
        occurred = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(JST)
        for staff_id, session_id in ((TRAINEE, "REM-S1"), (TRAINEE, "REM-S2"), (OTHER_TRAINEE, "REM-S1")):
            body = json.dumps({"type": "completion", "session_id": session_id, "staff_id": staff_id,
                               "occurred_at": occurred.isoformat()}).encode()
            delivered = http.post(system.url("training", "/webhooks/elearning"), content=body,
                                  headers=sign_webhook(system.settings.webhook_secret_list[0], body))
            assert delivered.status_code == 200, delivered.text
        _wait_for_report(http, system, TRAINEE, lambda year: year["status"] == "completed")
        _wait_for_report(http, system, OTHER_TRAINEE,
                         lambda year: year["status"] == "in_training" and year["sessions_done"] == ["REM-S1"])


def _wait_for_report(http: httpx.Client, system: RunningSystem, staff_id: str, holds: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = http.get(system.url("reporting", f"/api/v1/reports/trainees/{staff_id}"))
        if answer.status_code == 200:
            year = next((y for y in answer.json()["years"] if y["fiscal_year"] == YEAR), None)
            if year is not None and year["required_count"] == len(SESSIONS) and holds(year):
                return
        time.sleep(0.5)
    raise AssertionError(f"reporting never showed the expected year for {staff_id}")


def run_job(
    system: RunningSystem, relay: SmtpServer | None, *extra: str, demo: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    settings = {**system.env, "DX_SMTP_STARTTLS": "0", "DX_REMINDER_FROM": "dx-jinzai@pref.example.jp",
           "DX_REMINDER_NOMINATION_DEADLINE": "06-30", "DX_REMINDER_FINAL_WEEKS": "6",
           "DX_DEMO_MODE": "1" if demo else "0"}
    settings.pop("DX_SMTP_HOST", None)
    if relay is not None:
        settings.update({"DX_SMTP_HOST": "127.0.0.1", "DX_SMTP_PORT": str(relay.port)})
    settings.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "portal.reminders", "run", "--today", IN_THE_LAST_WEEKS.isoformat(), *extra],
        cwd=ROOT, env=settings, capture_output=True, text=True, timeout=180,
    )


def by_recipient(relay: SmtpServer) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for message in relay.messages():
        found.setdefault(str(message["To"]), []).append(message)
    return found


def test_each_reminder_arrives_once_and_a_refused_send_arrives_on_the_next_run(
    reminder_system: RunningSystem, relay: SmtpServer
) -> None:
    relay.refuse(ADDRESS[OTHER_TRAINEE])
    first = run_job(reminder_system, relay)
    assert first.returncode == 1, first.stderr  # one send refused: the run says so
    assert "due 2" in first.stdout and "sent 1" in first.stdout and "failed 1" in first.stdout, first.stdout
    assert "reminders:" in first.stderr, "a progress line"
    assert set(by_recipient(relay)) == {OWN_CONTACT}

    relay.accept_all()
    second = run_job(reminder_system, relay)
    assert second.returncode == 0, second.stderr
    assert "sent 1" in second.stdout and "already sent 1" in second.stdout, second.stdout
    third = run_job(reminder_system, relay)
    assert third.returncode == 0 and "sent 0" in third.stdout and "already sent 2" in third.stdout, third.stdout

    arrived = by_recipient(relay)
    assert sorted(arrived) == sorted([OWN_CONTACT, ADDRESS[OTHER_TRAINEE]]), "no department or trainee not due"
    assert all(len(messages) == 1 for messages in arrived.values()), "each reminder arrives once, not twice"
    label = fiscal_year_label_ja(YEAR)

    (department,) = arrived[OWN_CONTACT]
    assert department["Subject"] == f"【{label}】DX推進員の推薦（推薦枠）についてのお願い"
    assert department["From"] == "dx-jinzai@pref.example.jp"
    text = department.get_content()
    assert text.startswith("DX推進課 ご担当者様") and f"令和{YEAR - 2018}年6月30日時点で" in text

    (trainee,) = arrived[ADDRESS[OTHER_TRAINEE]]
    assert trainee["Subject"] == f"【{label}】DX推進員研修の未修了の研修があります"
    text = trainee.get_content()
    assert f"職員番号 {OTHER_TRAINEE} の方へ" in text and "・ステージ1 業務改善ハンズオン" in text
    assert "e-ラーニング" not in text, "a session already completed is not listed"
    assert "職員 二" not in text, "no name is put in a message"

    log = "\n".join(path.read_text(errors="replace") for path in (ARTIFACTS / "portal-reminder-logs").glob("*.log"))
    job_output = first.stdout + first.stderr + second.stdout + second.stderr
    for address in (OWN_CONTACT, OTHER_CONTACT, *ADDRESS.values()):
        assert address not in log and address not in job_output, "addresses never reach a log"


def test_a_dry_run_and_demo_mode_without_a_relay_send_nothing(
    reminder_system: RunningSystem, relay: SmtpServer
) -> None:
    dry = run_job(reminder_system, relay, "--dry-run")
    assert dry.returncode == 0 and "dry run" in dry.stdout, dry.stdout + dry.stderr
    demo = run_job(reminder_system, None, demo=True)
    assert demo.returncode == 0 and "nothing sent" in demo.stdout, demo.stdout + demo.stderr
    unconfigured = run_job(reminder_system, None)
    assert unconfigured.returncode == 2 and "DX_SMTP_HOST" in unconfigured.stderr
    assert relay.messages() == []


def test_contact_addresses_are_for_the_offices_only(reminder_system: RunningSystem) -> None:
    url = reminder_system.url("nomination", "/api/v1/contacts")
    with httpx.Client(timeout=30) as http:
        office = http.get(url, params={"fiscal_year": YEAR}, headers=bearer("dx_office"))
        assert office.status_code == 200, office.text
        assert {"key": OWN_DEPARTMENT, "email": OWN_CONTACT} in office.json()["departments"]
        assert {"key": COLLEAGUE} not in [{"key": e["key"]} for e in office.json()["staff"]], "no empty addresses"
        for role, extra in (("department", {"department": OWN_DEPARTMENT}), ("trainee", {"staff_id": TRAINEE}),
                            ("info_policy", {})):
            refused = http.get(url, params={"fiscal_year": YEAR}, headers=bearer(role, **extra))
            assert refused.status_code == 403, (role, refused.text)
        head = http.get(reminder_system.url("nomination", f"/api/v1/departments/{OWN_DEPARTMENT}/staff"),
                        params={"fiscal_year": YEAR}, headers=bearer("department", department=OWN_DEPARTMENT))
        assert head.status_code == 200 and "@" not in head.text, "a department head's roster shows no address"


async def test_through_a_relay_that_requires_starttls_and_a_login_a_wrong_password_sends_nothing_and_records_nothing(
    reminder_system: RunningSystem, tmp_path: Path
) -> None:
    connection = await asyncpg.connect(reminder_system.settings.database_url_of("portal"))
    try:
        await connection.execute("DELETE FROM portal.reminders_sent")  # as if this fiscal year had just begun
        with smtp_server(tmp_path / "tls-relay", login=("dx-relay", "relay-password-0123")) as relay:
            tls = {"DX_SMTP_HOST": "localhost", "DX_SMTP_STARTTLS": "1", "DX_SMTP_USERNAME": "dx-relay",
                   "SSL_CERT_FILE": str(relay.certificate)}
            refused = run_job(reminder_system, relay, env={**tls, "DX_SMTP_PASSWORD": "not-the-password"})
            assert refused.returncode == 1 and "failed 2" in refused.stdout, refused.stdout + refused.stderr
            assert relay.messages() == [] and await connection.fetchval("SELECT count(*) FROM portal.reminders_sent") == 0
            assert "not-the-password" not in refused.stdout + refused.stderr, "no secret in the output"

            sent = run_job(reminder_system, relay, env={**tls, "DX_SMTP_PASSWORD": "relay-password-0123"})
            assert sent.returncode == 0 and "sent 2" in sent.stdout, sent.stdout + sent.stderr
            assert sorted(str(m["To"]) for m in relay.messages()) == sorted([OWN_CONTACT, ADDRESS[OTHER_TRAINEE]])
            assert await connection.fetchval("SELECT count(*) FROM portal.reminders_sent") == 2
    finally:
        await connection.close()
