"""報告・集計 in the portal: the drill-down bureau → department → person with bookmarkable filters, the
offices' person search, a department head's view of their people (who is behind, the baseline rate),
a staff member's required sessions, and the DX office's pre-close checklist — each as its role sees it."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import openpyxl
import pytest

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
from tests.integration.portal.reports_data import LAST_YEAR, SESSIONS, load_report_facts
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.portal import PortalVisit, sign_in, username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LOGS = ARTIFACTS / "portal-reports-logs"


@pytest.fixture(scope="module")
async def portal_system(servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, LOGS) as system:
        await load_report_facts(system)
        yield system


def visit(idp: Idp, system: RunningSystem, role: str, department: str | None = None,
          staff_id: str | None = None) -> PortalVisit:
    return sign_in(idp, system.url("portal"), username_for(role, department=department, staff_id=staff_id))


def test_the_dx_office_drills_down_from_bureaus_to_a_department_to_a_person(
    idp: Idp, portal_system: RunningSystem
) -> None:
    office = visit(idp, portal_system, "dx_office")
    bureaus = office.get(f"/reports?fiscal_year={YEAR}")
    assert bureaus.status_code == 200
    assert "企画政策部" in bureaus.text and "総務部" in bureaus.text
    assert f'/reports/bureaus/{quote("企画政策部")}?fiscal_year={YEAR}' in bureaus.text

    bureau = office.get(f"/reports/bureaus/{quote('企画政策部')}?fiscal_year={YEAR}")
    assert bureau.status_code == 200
    assert f'data-testid="department-link-{OWN_DEPARTMENT}"' in bureau.text
    assert f"department-link-{OTHER_DEPARTMENT}" not in bureau.text

    department = office.get(f"/reports/departments/{OWN_DEPARTMENT}?fiscal_year={YEAR}")
    assert department.status_code == 200
    assert f'data-testid="person-row-{TRAINEE}"' in department.text
    assert "職員 一" in department.text, "the roster's name beside the staff id"
    assert "1 / 2" in department.text and "自薦枠" in department.text

    person = office.get(f"/reports/people/{TRAINEE}?fiscal_year={YEAR}")
    assert person.status_code == 200
    assert f'data-testid="trainee-year-{YEAR}"' in person.text
    assert SESSIONS[0] in person.text and "受講済" in person.text and "未受講" in person.text
    assert f'data-testid="explanation-{YEAR}"' in person.text


def test_the_filters_are_query_parameters_that_narrow_the_lists(idp: Idp, portal_system: RunningSystem) -> None:
    office = visit(idp, portal_system, "hr_office")
    recommended_only = office.get(f"/reports/departments/{OWN_DEPARTMENT}?fiscal_year={YEAR}&slot=recommended")
    assert recommended_only.status_code == 200
    assert f"person-row-{TRAINEE}" not in recommended_only.text
    stage_one = office.get(f"/reports/departments/{OWN_DEPARTMENT}?fiscal_year={YEAR}&stage=1&slot=self")
    assert f"person-row-{TRAINEE}" in stage_one.text
    assert 'value="self" selected' in stage_one.text and 'value="1" selected' in stage_one.text
    one_bureau = office.get(f"/reports?fiscal_year={YEAR}&bureau={quote('総務部')}")
    assert "bureau-row-1" in one_bureau.text and "bureau-row-2" not in one_bureau.text
    assert office.get(f"/reports/departments/{OWN_DEPARTMENT}?stage=9").status_code == 400
    assert office.get(f"/reports/departments/{OWN_DEPARTMENT}?slot=anything").status_code == 400


def test_each_level_downloads_as_excel(idp: Idp, portal_system: RunningSystem) -> None:
    office = visit(idp, portal_system, "dx_office")
    answer = office.get(f"/reports/departments/{OWN_DEPARTMENT}/trainees.xlsx?fiscal_year={YEAR}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert rows[0][:8] == (TRAINEE, "職員 一", 1, "自薦枠", "受講中", 2, 1, 1)
    page = office.get(f"/reports?fiscal_year={YEAR}")
    assert f"/reports/departments.xlsx?fiscal_year={YEAR}" in page.text


def test_a_department_head_sees_their_own_department_and_cannot_drill_into_another(
    idp: Idp, portal_system: RunningSystem
) -> None:
    head = visit(idp, portal_system, "department", department=OWN_DEPARTMENT)
    bureaus = head.get(f"/reports?fiscal_year={YEAR}")
    assert bureaus.status_code == 200
    assert "企画政策部" in bureaus.text and "総務部" not in bureaus.text
    assert head.get(f"/reports/departments/{OWN_DEPARTMENT}?fiscal_year={YEAR}").status_code == 200
    other = head.get(f"/reports/departments/{OTHER_DEPARTMENT}?fiscal_year={YEAR}")
    assert other.status_code == 403 and "ROLE_NOT_PERMITTED" in other.text
    assert head.get(f"/reports/departments/{OTHER_DEPARTMENT}/trainees.xlsx").status_code == 403
    assert head.get(f"/reports/people/{OTHER_TRAINEE}").status_code == 403
    assert head.get("/reports/search?q=職員").status_code == 403


def test_a_department_head_sees_their_peoples_progress_who_is_behind_and_the_baseline_rate(
    idp: Idp, portal_system: RunningSystem
) -> None:
    head = visit(idp, portal_system, "department", department=OWN_DEPARTMENT)
    assert 'data-testid="to-department-progress"' in head.get("/department").text
    progress = head.get(f"/department/progress?fiscal_year={YEAR}")
    assert progress.status_code == 200
    assert f'data-testid="person-row-{TRAINEE}"' in progress.text
    assert f'data-testid="person-row-{COLLEAGUE}"' in progress.text
    assert 'data-testid="behind-rule"' in progress.text and "8週" in progress.text
    assert 'data-testid="department-baseline-rate"' in progress.text
    assert OTHER_TRAINEE not in progress.text
    office = visit(idp, portal_system, "dx_office")
    assert office.get("/department/progress").status_code == 403


def test_a_trainee_cannot_search_and_their_reports_are_their_own_page(idp: Idp, portal_system: RunningSystem) -> None:
    trainee = visit(idp, portal_system, "trainee", staff_id=TRAINEE)
    assert trainee.get("/reports/search?q=職員").status_code == 403
    start = trainee.get("/reports")
    assert start.status_code == 303 and start.headers["location"] == f"/reports/people/{TRAINEE}"
    assert trainee.get(f"/reports/people/{TRAINEE}").status_code == 200
    assert trainee.get(f"/reports/people/{OTHER_TRAINEE}").status_code == 403
    assert trainee.get(f"/reports/departments/{OWN_DEPARTMENT}").status_code == 403


def test_the_offices_find_a_person_by_name_and_the_name_is_not_logged(idp: Idp, portal_system: RunningSystem) -> None:
    office = visit(idp, portal_system, "dx_office")
    found = office.get(f"/reports/search?q={quote('職員一')}&fiscal_year={YEAR}")
    assert found.status_code == 200
    assert f'data-testid="found-{TRAINEE}"' in found.text and f"found-{COLLEAGUE}" not in found.text
    by_id = office.get(f"/reports/search?q={TRAINEE}")
    assert f'data-testid="found-{TRAINEE}"' in by_id.text
    for log in LOGS.glob("*.log"):
        assert "職員一" not in log.read_text(errors="replace"), log.name


def test_a_staff_member_sees_which_required_sessions_are_done_and_which_are_open(
    idp: Idp, portal_system: RunningSystem
) -> None:
    me = visit(idp, portal_system, "trainee", staff_id=TRAINEE).get("/me")
    assert me.status_code == 200
    assert f'data-testid="session-state-{SESSIONS[0]}">受講済' in me.text
    assert f'data-testid="session-state-{SESSIONS[1]}">未受講' in me.text


def test_the_close_checklist_lists_pending_decisions_and_dead_letters(idp: Idp, portal_system: RunningSystem) -> None:
    office = visit(idp, portal_system, "dx_office")
    checklist = office.get(f"/office/close?fiscal_year={LAST_YEAR}")
    assert checklist.status_code == 200
    for item in ("check-missing", "check-pending", "check-unmatched", "check-dead-letters"):
        assert f'data-testid="{item}"' in checklist.text
    assert f'data-testid="pending-{COLLEAGUE}"' in checklist.text
    assert f'data-testid="pending-{TRAINEE}"' not in checklist.text
    assert 'data-testid="dead-letter-queue"' in checklist.text and ".dlq</code>" in checklist.text


async def test_a_session_attended_after_the_year_was_closed_shows_as_late_on_my_page(
    idp: Idp, portal_system: RunningSystem
) -> None:
    """Last in this module: it closes this fiscal year early (P6), which every later page would see."""
    async with portal_system.client(timeout=30) as http:
        closed = await http.post(portal_system.url("progression", f"/api/v1/fiscal-years/{YEAR}/close"),
                                 json={"early_close": True, "reason": "遅延表示の確認のため"})
        assert closed.status_code == 201, closed.text
        attended = await http.post(
            portal_system.url("training", f"/api/v1/sessions/{SESSIONS[1]}/attendance"),
            json={"staff_ids": [TRAINEE], "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
        )
        assert attended.status_code == 200, attended.text
        deadline = time.monotonic() + 60
        while not [fact for fact in (await http.get(
                portal_system.url("progression", f"/api/v1/trainees/{TRAINEE}"))).json()["late"]
                if fact["session_id"] == SESSIONS[1]]:
            assert time.monotonic() < deadline, "progression never recorded the late attendance"
            await asyncio.sleep(0.5)
    me = visit(idp, portal_system, "trainee", staff_id=TRAINEE).get("/me")
    assert f'data-testid="session-state-{SESSIONS[1]}">年度締め後の受講' in me.text
    assert f'data-testid="session-state-{SESSIONS[0]}">受講済' in me.text
