"""Excel downloads and 修了証 over HTTP, signed in through the real identity provider: the workbooks open in a
reader with typed cells and what each role may see; a certificate for a completed stage only, its text, and
the public verification page that confirms a genuine number and refuses a tampered one."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import datetime
from typing import Any

import httpx
import openpyxl
import pytest
from pypdf import PdfReader

from dx_shared.calendar import fiscal_year_label_ja, reiwa_date_ja, reiwa_year
from tests.integration.portal.conftest import (
    ARTIFACTS,
    OTHER_DEPARTMENT,
    OTHER_TRAINEE,
    OWN_DEPARTMENT,
    TRAINEE,
    YEAR,
    complete_stage_one,
)
from tests.support.idp import Idp
from tests.support.portal import PortalVisit, sign_in, username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION = f"R{reiwa_year(YEAR)}-S1-EL-CERT"


def workbook(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert answer.headers["cache-control"] == "no-store"
    assert "filename*=UTF-8''" in answer.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    return sheet


def rows_of(sheet: Any) -> list[list[Any]]:
    return [list(row) for row in sheet.iter_rows(min_row=3, values_only=True)]


def test_the_office_downloads_typed_workbooks_with_a_frozen_header(idp: Idp, portal_system: RunningSystem) -> None:
    visit = sign_in(idp, portal_system.url("portal"), username_for("dx_office"))
    dashboard = visit.get(f"/?fiscal_year={YEAR}")
    assert f'href="/reports/departments.xlsx?fiscal_year={YEAR}"' in dashboard.text
    assert 'href="/static/print.css" media="print"' in dashboard.text

    departments = workbook(visit.get(f"/reports/departments.xlsx?fiscal_year={YEAR}"))
    assert fiscal_year_label_ja(YEAR) in str(departments["A1"].value)
    assert departments.freeze_panes == "A3"
    assert departments["B2"].value == "所属コード"
    codes = {row[1]: row for row in rows_of(departments)}
    assert set(codes) == {OWN_DEPARTMENT, OTHER_DEPARTMENT}
    code_cell = next(c for c in departments["B"][2:] if c.value == OTHER_DEPARTMENT)
    assert code_cell.data_type == "s", "a department code is text, so leading zeros would survive"
    recommended = departments.cell(code_cell.row, 6)
    assert recommended.value == 1 and recommended.data_type == "n", "a count is a number"
    assert isinstance(departments.cell(1, 9).value, datetime), "the time made is a date cell"

    plan = workbook(visit.get("/reports/plan.xlsx"))
    assert plan.freeze_panes == "A3" and "令和" in str(plan["A1"].value)
    shares = [row[7] for row in rows_of(plan) if row[7] is not None]
    assert shares and all(isinstance(share, int | float) for share in shares)
    share_cell = next(c for c in plan["H"][2:] if c.value is not None)
    assert "%" in share_cell.number_format

    baseline = workbook(visit.get(f"/reports/baseline.xlsx?fiscal_year={YEAR}"))
    assert baseline["A3"].value == "全体" and isinstance(baseline["D3"].value, int)


def test_what_a_workbook_holds_is_reportings_decision_for_the_role(idp: Idp, portal_system: RunningSystem) -> None:
    head = sign_in(idp, portal_system.url("portal"),
                   username_for("department", department=OWN_DEPARTMENT, staff_id="2609999"))
    codes = [row[1] for row in rows_of(workbook(head.get(f"/reports/departments.xlsx?fiscal_year={YEAR}")))]
    assert codes == [OWN_DEPARTMENT], "a department head's workbook holds only their own department"

    trainee = sign_in(idp, portal_system.url("portal"), username_for("trainee", staff_id=TRAINEE))
    refused = trainee.get(f"/reports/departments.xlsx?fiscal_year={YEAR}")
    assert refused.status_code == 403 and "spreadsheetml" not in refused.headers["content-type"]



def _save_page_image(pdf: bytes) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "certificate.pdf").write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(ARTIFACTS / "certificate.pdf"),
                        str(ARTIFACTS / "certificate")], check=True, timeout=60)


def test_a_trainee_gets_a_certificate_for_a_completed_stage_only_and_anyone_can_verify_it(
    idp: Idp, portal_system: RunningSystem
) -> None:
    completed_at = complete_stage_one(portal_system, OTHER_TRAINEE, SESSION)
    trainee: PortalVisit = sign_in(idp, portal_system.url("portal"), username_for("trainee", staff_id=OTHER_TRAINEE))
    me = trainee.get("/me")
    link = f"/me/certificates/{YEAR}/1.pdf"
    assert f'href="{link}"' in me.text

    answer = trainee.get(link)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    _save_page_image(answer.content)
    text = PdfReader(io.BytesIO(answer.content)).pages[0].extract_text().replace(" ", "").replace("　", "")
    assert "修了証" in text and reiwa_date_ja(completed_at.date()) in text
    assert fiscal_year_label_ja(YEAR) in text and OTHER_TRAINEE in text and "業務効率化" in text
    found = re.search(r"証明書番号(\S+)", text)
    assert found, text
    number = found.group(1)
    assert number.startswith(f"{OTHER_TRAINEE}-{YEAR}-1-")
    printed_url = portal_system.url("portal", f"/verify/{number}")
    assert printed_url in text, "the printed verification URL is the portal's page for this number"

    assert trainee.get(f"/me/certificates/{YEAR}/2.pdf").status_code == 404, "stage 2 is not completed"
    assert trainee.get(f"/me/certificates/{YEAR - 1}/1.pdf").status_code == 404
    other = sign_in(idp, portal_system.url("portal"), username_for("trainee", staff_id=TRAINEE))
    refused = other.get(link)
    assert refused.status_code == 404, "the path is always the signed-in person's own; they completed nothing"
    assert refused.headers["content-type"].startswith("text/html")

    with httpx.Client(timeout=30) as anyone:  # no session, no token
        genuine = anyone.get(printed_url)
        assert genuine.status_code == 200 and 'data-testid="certificate-genuine"' in genuine.text
        assert f'data-testid="certificate-staff-id">{OTHER_TRAINEE}<' in genuine.text
        assert fiscal_year_label_ja(YEAR) in genuine.text and "職員 二" not in genuine.text, "no name is shown"
        tag = number.rsplit("-", 1)[1]
        for forged in (number.replace(f"-{YEAR}-1-", f"-{YEAR}-2-"), number.replace(OTHER_TRAINEE, TRAINEE),
                       number[:-len(tag)] + ("0" * len(tag))):
            refused = anyone.get(portal_system.url("portal", f"/verify/{forged}"))
            assert refused.status_code == 404 and 'data-testid="certificate-not-genuine"' in refused.text
