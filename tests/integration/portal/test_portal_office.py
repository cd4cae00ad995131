"""The DX office's and HR office's pages, signed in through the real identity provider against the
running services: an import is previewed (nothing recorded) and then exactly the previewed file is
imported; sessions, curricula, attendance, waivers, the unmatched-completions queue and the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from dx_shared.calendar import JST
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.integration.portal.conftest import COLLEAGUE, OTHER_DEPARTMENT, OTHER_TRAINEE, OWN_DEPARTMENT, TRAINEE, YEAR
from tests.support.idp import Idp
from tests.support.portal import PortalVisit, sign_in, username_for
from tests.support.system import RunningSystem
from training.webhook_signing import sign

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

NEWCOMER = "2600010"
ROSTER = (
    "職員番号,氏名,所属コード,管理職\n"
    f"{TRAINEE},職員 一,{OWN_DEPARTMENT},1\n"  # changed: now a manager
    f"{OTHER_TRAINEE},職員 二,{OTHER_DEPARTMENT},0\n"  # unchanged
    f"{NEWCOMER},職員 十,{OWN_DEPARTMENT},0\n"  # added; COLLEAGUE is left out, so removed
).encode("cp932")
BAD_ROSTER = (
    "職員番号,氏名,所属コード\n"
    f"{TRAINEE},職員 一,{OWN_DEPARTMENT}\n"
    "2600011,職員 十一,999999\n"
    f"{TRAINEE},職員 一,{OWN_DEPARTMENT}\n"
).encode()


def office(idp: Idp, system: RunningSystem, role: str = "hr_office") -> PortalVisit:
    return sign_in(idp, system.url("portal"), username_for(role))


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def upload(visit: PortalVisit, kind: str, content: bytes, token: str, origin: str | None = None) -> httpx.Response:
    return visit.browser.post(
        visit.url(f"/office/imports/{kind}/preview"),
        data={"csrf_token": token, "fiscal_year": str(YEAR)},
        files={"file": ("名簿.csv", content, "text/csv")},
        headers={"Origin": origin or visit.origin},
    )


def draft_id_of(page: httpx.Response) -> str:
    found = re.search(r'name="draft_id" value="([^"]+)"', page.text)
    assert found, "the preview offers no confirmation"
    return found.group(1)


def staff_of(system: RunningSystem, department: str) -> set[str]:
    response = httpx.get(system.url("nomination", f"/api/v1/departments/{department}/staff"),
                         params={"fiscal_year": YEAR}, headers=system.headers, timeout=15)
    assert response.status_code == 200, response.text
    return {person["staff_id"] for person in response.json()}


def test_a_bad_roster_shows_every_bad_row_with_its_line_and_reason_and_offers_no_confirmation(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = office(idp, portal_system)
    form = visit.get("/office/imports/staff")
    assert form.status_code == 200
    assert '<label for="import-file">' in form.text

    preview = upload(visit, "staff", BAD_ROSTER, csrf_of(form))

    assert preview.status_code == 200, preview.text[:500]
    assert 'data-testid="preview-rejected"' in preview.text
    assert "3行目" in preview.text and "所属コード 999999 はこの年度の所属一覧にありません。" in preview.text
    assert "4行目" in preview.text and "2 行目と重複しています" in preview.text
    assert 'name="draft_id"' not in preview.text
    assert staff_of(portal_system, OWN_DEPARTMENT) == {TRAINEE, COLLEAGUE}


def test_a_roster_preview_records_nothing_and_the_confirmation_imports_exactly_that_file_once(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = office(idp, portal_system)
    token = csrf_of(visit.get("/office/imports/staff"))

    preview = upload(visit, "staff", ROSTER, token)

    assert preview.status_code == 200, preview.text[:500]
    counts = {name: re.search(rf'data-testid="count-{name}">(\d+)<', preview.text).group(1)  # type: ignore[union-attr]
              for name in ("added", "changed", "removed", "bad")}
    assert counts == {"added": "1", "changed": "1", "removed": "1", "bad": "0"}
    assert NEWCOMER in preview.text and f"{TRAINEE}：管理職" in preview.text and COLLEAGUE in preview.text
    assert staff_of(portal_system, OWN_DEPARTMENT) == {TRAINEE, COLLEAGUE}, "a preview records nothing"
    draft_id = draft_id_of(preview)

    confirmed = visit.post_form("/office/imports/staff/confirm", {"csrf_token": token, "draft_id": draft_id})

    assert confirmed.status_code == 200, confirmed.text[:500]
    assert 'data-testid="import-applied"' in confirmed.text
    assert staff_of(portal_system, OWN_DEPARTMENT) == {TRAINEE, NEWCOMER}
    again = visit.post_form("/office/imports/staff/confirm", {"csrf_token": token, "draft_id": draft_id})
    assert again.status_code == 404 and "確認待ちのファイルが見つかりません" in again.text

    # The same file once more: the service finds nothing to change, and the page says so.
    repeat = upload(visit, "staff", ROSTER, token)
    assert 'data-testid="preview-unchanged"' in repeat.text
    assert 'name="draft_id"' not in repeat.text


def expire(system: RunningSystem, draft_id: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(system.settings.database_url)
        try:
            await connection.execute("UPDATE portal.import_drafts SET expires_at = now() - interval '1 second'"
                                     " WHERE draft_id = $1", draft_id)
        finally:
            await connection.close()

    asyncio.run(run())


def test_a_held_file_is_refused_to_another_session_and_after_it_expires(
    idp: Idp, portal_system: RunningSystem
) -> None:
    departments = f"所属コード,所属名,部局\n{OWN_DEPARTMENT},DX推進課,企画政策部\n{OTHER_DEPARTMENT},財政課,総務部\n" \
                  "300300,新設課,総務部\n"
    owner = office(idp, portal_system)
    token = csrf_of(owner.get("/office/imports/departments"))
    draft_id = draft_id_of(upload(owner, "departments", departments.encode(), token))

    other = office(idp, portal_system, role="dx_office")
    other_token = csrf_of(other.get("/office/imports/departments"))
    stolen = other.post_form("/office/imports/departments/confirm", {"csrf_token": other_token, "draft_id": draft_id})
    assert stolen.status_code == 403 and "別の方が確認中" in stolen.text

    expire(portal_system, draft_id)
    expired = owner.post_form("/office/imports/departments/confirm", {"csrf_token": token, "draft_id": draft_id})
    assert expired.status_code == 410 and "有効期限" in expired.text

    codes = httpx.get(portal_system.url("nomination", "/api/v1/departments"), params={"fiscal_year": YEAR},
                      headers=portal_system.headers, timeout=15).json()
    assert "300300" not in {d["code"] for d in codes}, "nothing reached nomination"


def test_an_upload_from_another_site_is_refused(idp: Idp, portal_system: RunningSystem) -> None:
    visit = office(idp, portal_system)
    token = csrf_of(visit.get("/office/imports/staff"))
    refused = upload(visit, "staff", ROSTER, token, origin="http://evil.example")
    assert refused.status_code == 403 and "この送信は受け付けられません" in refused.text


def test_a_nomination_sheet_preview_lists_refused_rows_and_the_confirmation_nominates_the_others(
    idp: Idp, portal_system: RunningSystem
) -> None:
    # After the roster test: NEWCOMER is on the roster; OTHER_TRAINEE already holds a nomination this year.
    sheet = f"職員番号,枠\n{NEWCOMER},自薦\n9999999,自薦\n{OTHER_TRAINEE},推薦\n".encode()
    visit = office(idp, portal_system, role="dx_office")
    token = csrf_of(visit.get("/office/imports/nominations"))
    preview = upload(visit, "nominations", sheet, token)
    assert preview.status_code == 200, preview.text[:500]
    assert "3行目" in preview.text and "4行目" in preview.text
    assert 'data-testid="count-added">1<' in preview.text
    confirmed = visit.post_form("/office/imports/nominations/confirm",
                                {"csrf_token": token, "draft_id": draft_id_of(preview)})
    assert 'data-testid="import-applied"' in confirmed.text
    listed = httpx.get(portal_system.url("nomination", "/api/v1/nominations"),
                       params={"fiscal_year": YEAR, "staff_id": NEWCOMER}, headers=portal_system.headers).json()
    assert [n["slot"] for n in listed["items"]] == ["self"]


def test_sessions_curricula_attendance_and_waivers_from_the_office_pages(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = office(idp, portal_system)
    token = csrf_of(visit.get("/office/sessions"))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).astimezone(JST)
    if yesterday.date().month == 3 and yesterday.date().day == 31:
        yesterday = datetime.now(UTC).astimezone(JST) - timedelta(hours=1)
    title = f"データ活用演習 {uuid.uuid4().hex[:6]}"
    created = visit.post_form("/office/sessions", {
        "csrf_token": token, "fiscal_year": str(YEAR), "title": title, "method": "classroom",
        "audience": "promoter", "stage": "1", "starts_at": yesterday.strftime("%Y-%m-%dT%H:%M"), "capacity": "30",
        "move_on": "completed"})
    assert created.status_code == 303, created.text[:500]
    listed = visit.get(created.headers["location"])
    assert title in listed.text and 'data-testid="session-created"' in listed.text
    session_id = re.search(r"研修ID ([^）]+)）", listed.text).group(1)  # type: ignore[union-attr]

    blank = visit.post_form("/office/sessions", {"csrf_token": token, "fiscal_year": str(YEAR), "title": " ",
                                                 "method": "classroom", "audience": "all_staff"})
    assert blank.status_code == 422 and "研修名を入力してください" in blank.text

    curriculum = visit.post_form("/office/curricula", {"csrf_token": token, "fiscal_year": str(YEAR), "stage": "1",
                                                       "session_id": session_id})
    assert curriculum.status_code == 200 and 'data-testid="curriculum-published"' in curriculum.text
    assert "第1版" in curriculum.text

    page = visit.get(f"/office/attendance?fiscal_year={YEAR}&session_id={session_id}")
    assert f'value="{OTHER_TRAINEE}"' in page.text, "the year's DX promoters are listed to tick"
    recorded = visit.post_form("/office/attendance", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                      "session_id": session_id, "staff_id": OTHER_TRAINEE})
    assert 'data-testid="attendance-result"' in recorded.text and "1名" in recorded.text
    again = visit.post_form("/office/attendance", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                   "session_id": session_id, "staff_ids": OTHER_TRAINEE})
    assert 'data-testid="attendance-already"' in again.text
    unknown = visit.post_form("/office/attendance", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                     "session_id": session_id, "staff_ids": "9999999"})
    assert unknown.status_code == 422 and 'data-testid="unknown-staff"' in unknown.text and "9999999" in unknown.text

    no_reason = visit.post_form("/office/waivers", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                    "session_id": session_id, "staff_id": TRAINEE, "reason": ""})
    assert no_reason.status_code == 422 and "免除の理由を入力してください" in no_reason.text
    waived = visit.post_form("/office/waivers", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                 "session_id": session_id, "staff_id": TRAINEE,
                                                 "reason": "前年度に同等の研修を修了済みのため"})
    assert waived.status_code == 200 and "免除し、修了扱いとしました" in waived.text
    repeated = visit.post_form("/office/waivers", {"csrf_token": token, "fiscal_year": str(YEAR),
                                                   "session_id": session_id, "staff_id": TRAINEE,
                                                   "reason": "前年度に同等の研修を修了済みのため"})
    assert "既に免除済みです" in repeated.text


def deliver_unknown_person(system: RunningSystem, session_id: str, staff_id: str) -> None:
    body = json.dumps({"type": "completion", "session_id": session_id, "staff_id": staff_id,
                       "occurred_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}).encode()
    response = httpx.post(system.url("training", "/webhooks/elearning"), content=body,
                          headers=sign(TEST_WEBHOOK_SECRET, body, f"msg_{uuid.uuid4().hex}"), timeout=15)
    assert response.status_code in (200, 202), response.text
    assert response.json()["status"] == "unmatched", response.text


def test_the_unmatched_queue_is_matched_by_hand_or_dismissed_once(idp: Idp, portal_system: RunningSystem) -> None:
    visit = office(idp, portal_system, role="dx_office")
    token = csrf_of(visit.get("/office/sessions"))
    visit.post_form("/office/sessions", {"csrf_token": token, "fiscal_year": str(YEAR), "title": "情報セキュリティ",
                                         "method": "e_learning", "audience": "all_staff"})
    sessions = httpx.get(portal_system.url("training", "/api/v1/sessions"), params={"fiscal_year": YEAR},
                         headers=portal_system.headers).json()
    session_id = next(s["session_id"] for s in sessions if s["title"] == "情報セキュリティ")
    deliver_unknown_person(portal_system, session_id, "26OOO01")
    deliver_unknown_person(portal_system, session_id, "TEST-ACCOUNT")
    assert eventually(lambda: unmatched_in_reporting(portal_system) == 2), "reporting never counted them"

    queue = visit.get("/office/unmatched")
    assert queue.status_code == 200 and "26OOO01" in queue.text and "TEST-ACCOUNT" in queue.text
    ids = dict(re.findall(r'action="/office/unmatched/([^/]+)/match".*?value="([^"]+)" size', queue.text, re.S))
    by_staff = {staff: unmatched_id for unmatched_id, staff in ids.items()}

    matched = visit.post_form(f"/office/unmatched/{by_staff['26OOO01']}/match",
                              {"csrf_token": token, "staff_id": TRAINEE})
    assert matched.status_code == 303
    assert 'data-testid="unmatched-done"' in visit.get(matched.headers["location"]).text
    twice = visit.post_form(f"/office/unmatched/{by_staff['26OOO01']}/match", {"csrf_token": token,
                                                                                 "staff_id": TRAINEE})
    assert twice.status_code == 409 and "既に照合済みまたは対象外" in twice.text

    no_reason = visit.post_form(f"/office/unmatched/{by_staff['TEST-ACCOUNT']}/dismiss",
                                {"csrf_token": token, "reason": " "})
    assert no_reason.status_code == 422
    dismissed = visit.post_form(f"/office/unmatched/{by_staff['TEST-ACCOUNT']}/dismiss",
                                {"csrf_token": token, "reason": "動作確認用のアカウントのため"})
    assert dismissed.status_code == 303
    after = visit.get("/office/unmatched")
    assert 'data-testid="unmatched-empty"' in after.text
    assert "動作確認用のアカウントのため" in after.text
    completions = httpx.get(portal_system.url("training", "/api/v1/completions"),
                            params={"session_id": session_id}, headers=portal_system.headers).json()
    assert [c["staff_id"] for c in completions] == [TRAINEE]
    # Both resolutions travel to reporting as events: the year-end checklist no longer counts them.
    assert eventually(lambda: unmatched_in_reporting(portal_system) == 0), "reporting still counts them"


def unmatched_in_reporting(system: RunningSystem) -> int:
    pipeline = httpx.get(system.url("reporting", "/api/v1/reports/pipeline"), headers=system.headers, timeout=15)
    assert pipeline.status_code == 200, pipeline.text
    count: int = pipeline.json()["unmatched_statements"]["count"]
    return count


def eventually(condition: Callable[[], bool], attempts: int = 100) -> bool:
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_audit_trail_merges_every_service_for_the_information_policy_office(
    idp: Idp, portal_system: RunningSystem
) -> None:
    hr = office(idp, portal_system)
    hr.post_form("/office/waivers", {"csrf_token": csrf_of(hr.get("/office/waivers")), "fiscal_year": str(YEAR),
                                     "session_id": "S-NONE", "staff_id": TRAINEE, "reason": "監査記録の確認"})
    reader = office(idp, portal_system, role="info_policy")
    assert reader.get("/office/imports/staff").status_code == 403, "the information-policy office imports nothing"

    trail = reader.get("/office/audit")
    assert trail.status_code == 200, trail.text[:500]
    assert "/api/v1/completions/waive" in trail.text and "拒否（404" in trail.text
    assert "/api/v1/departments/import" in trail.text or "/api/v1/staff/import" in trail.text

    today = datetime.now(UTC).astimezone(JST).date().isoformat()
    only_training = reader.get(f"/office/audit?service=training&since={today}&until={today}")
    assert "/api/v1/completions/waive" in only_training.text
    assert "/api/v1/departments/import" not in only_training.text and "/api/v1/staff/import" not in only_training.text
    assert "研修・修了" in only_training.text
    tomorrow = (datetime.now(UTC).astimezone(JST).date() + timedelta(days=1)).isoformat()
    assert 'data-testid="audit-empty"' in reader.get(f"/office/audit?since={tomorrow}").text

    link = re.search(r'href="(/office/audit/training\.csv[^"]*)"', only_training.text).group(1)  # type: ignore[union-attr]
    csv = reader.get(link.replace("&amp;", "&"))
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    assert "/api/v1/completions/waive" in csv.content.decode("utf-8-sig")


def test_people_outside_the_offices_are_refused_the_office_pages(idp: Idp, portal_system: RunningSystem) -> None:
    trainee = sign_in(idp, portal_system.url("portal"), username_for("trainee", staff_id=TRAINEE))
    head = sign_in(idp, portal_system.url("portal"), username_for("department", department=OWN_DEPARTMENT))
    for visit in (trainee, head):
        assert 'data-testid="nav-office"' not in visit.get("/").text
        for path in ("/office", "/office/imports/staff", "/office/sessions", "/office/unmatched", "/office/audit",
                     "/office/audit/training.csv"):
            response = visit.get(path)
            assert response.status_code == 403, (path, response.status_code)
            assert "あなたの役割では利用できません" in response.text
