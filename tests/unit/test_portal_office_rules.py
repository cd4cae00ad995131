"""The office pages' own rules: who is offered them, when a held import file may be confirmed, how a
dry-run answer reads as a preview, the forms' values, and the merged audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dx_shared.roles import Caller, Role
from portal.domain import navigation_for
from portal.office_rules import (
    DRAFT_LIFETIME,
    DraftRefused,
    FormInvalid,
    HeldFile,
    audit_query,
    confirmable,
    digest_of,
    jst_moment,
    may_do_office_work,
    may_read_audit_trail,
    merged_audit,
    preview_of,
    rejected_preview,
    session_request,
    staff_ids_of,
)

NOON = datetime(2026, 12, 2, 3, tzinfo=UTC)
CONTENT = "職員番号,氏名,所属コード\n2600001,職員 一,100100\n".encode()


def held(**changes: object) -> HeldFile:
    values: dict[str, object] = {
        "draft_id": "d1", "session_key": "mine", "kind": "staff", "fiscal_year": 2026, "filename": "名簿.csv",
        "content": CONTENT, "sha256": digest_of(CONTENT), "created_at": NOON, "expires_at": NOON + DRAFT_LIFETIME,
    }
    return HeldFile(**{**values, **changes})  # type: ignore[arg-type]


def refusal_code(**kwargs: object) -> str:
    with pytest.raises(DraftRefused) as refused:
        confirmable(**kwargs)  # type: ignore[arg-type]
    return refused.value.code


def test_only_the_offices_do_office_work_and_the_information_policy_office_also_reads_the_audit_trail() -> None:
    for role in Role:
        caller = Caller(role=role)
        assert may_do_office_work(caller) == (role in (Role.DX_OFFICE, Role.HR_OFFICE))
        assert may_read_audit_trail(caller) == (role in (Role.DX_OFFICE, Role.HR_OFFICE, Role.INFO_POLICY))
        assert navigation_for(caller).office_work == may_do_office_work(caller)
        assert navigation_for(caller).audit_trail == may_read_audit_trail(caller)


def test_the_uploader_may_confirm_their_held_file_before_it_expires() -> None:
    assert confirmable(held(), "mine", "staff", NOON + DRAFT_LIFETIME - timedelta(seconds=1)).content == CONTENT


def test_a_held_file_is_refused_when_missing_someone_elses_expired_of_another_kind_or_altered() -> None:
    assert refusal_code(held=None, session_key="mine", kind="staff", now=NOON) == "IMPORT_DRAFT_NOT_FOUND"
    assert refusal_code(held=held(), session_key="theirs", kind="staff", now=NOON) == "IMPORT_DRAFT_NOT_YOURS"
    assert refusal_code(held=held(), session_key="mine", kind="staff", now=NOON + DRAFT_LIFETIME) == \
        "IMPORT_DRAFT_EXPIRED"
    assert refusal_code(held=held(), session_key="mine", kind="departments", now=NOON) == \
        "IMPORT_DRAFT_KIND_MISMATCH"
    assert refusal_code(held=held(content=CONTENT + b"x"), session_key="mine", kind="staff", now=NOON) == \
        "IMPORT_DRAFT_ALTERED"


def test_a_roster_dry_run_reads_as_rows_added_changed_and_removed_in_japanese() -> None:
    answer = {"rows": 3, "encoding": "cp932", "added": ["2600010"], "removed": ["2600003"],
              "changed": [{"key": "2600001", "fields": ["is_manager", "department_code"]}],
              "summary": {"added": 1, "changed": 1, "unchanged": 1, "removed": 1}, "applied": False,
              "ignored_columns": ["備考"], "dry_run": True}
    preview = preview_of("staff", 2026, answer)
    assert (preview.added, preview.removed, preview.unchanged) == (["2600010"], ["2600003"], 1)
    assert preview.changed == [("2600001", "管理職、所属コード")]
    assert preview.may_confirm and not preview.applied


def test_a_dry_run_that_changes_nothing_offers_no_confirmation() -> None:
    preview = preview_of("departments", 2026, {"rows": 2, "added": [], "changed": [], "removed": [],
                                                "summary": {"unchanged": 2}})
    assert not preview.changes_anything and not preview.may_confirm


def test_a_rejected_file_lists_every_bad_row_and_offers_no_confirmation() -> None:
    problem = {"code": "IMPORT_REJECTED", "rows": 3, "bad_rows": [
        {"line": 3, "code": "UNKNOWN_DEPARTMENT", "message_ja": "所属コード 999999 はこの年度の所属一覧にありません。"},
        {"line": None, "code": "EMPTY_FILE", "message_ja": "データ行がありません。"}]}
    preview = rejected_preview("staff", 2026, problem)
    assert [(row.line, row.code) for row in preview.bad_rows] == [(3, "UNKNOWN_DEPARTMENT"), (None, "EMPTY_FILE")]
    assert preview.rejected and not preview.may_confirm


def test_a_nomination_sheet_adds_its_accepted_rows_and_lists_its_refused_rows_as_bad() -> None:
    answer = {"dry_run": True, "encoding": "utf-8", "results": [
        {"line": 2, "staff_id": "2600010", "slot": "self", "outcome": "accepted"},
        {"line": 3, "staff_id": "9999999", "slot": "self", "outcome": "refused", "code": "UNKNOWN_STAFF",
         "message_ja": "名簿にありません"}]}
    preview = preview_of("nominations", 2026, answer)
    assert preview.added == ["2行目 職員番号 2600010（自薦）"]
    assert [(row.line, row.code) for row in preview.bad_rows] == [(3, "UNKNOWN_STAFF")]
    assert preview.may_confirm and not preview.applied


def test_a_local_date_time_from_the_form_is_japan_time() -> None:
    assert jst_moment("2026-06-01T10:00") == "2026-06-01T10:00:00+09:00"
    assert jst_moment("") is None
    with pytest.raises(FormInvalid):
        jst_moment("6月1日")


def test_the_session_form_becomes_the_training_services_request() -> None:
    body = session_request({"title": " データ活用演習 ", "method": "classroom", "audience": "promoter",
                            "stage": "2", "capacity": "30", "starts_at": "2026-06-01T10:00"}, 2026)
    assert body["title"] == "データ活用演習" and body["stage"] == 2 and body["capacity"] == 30
    assert session_request({"title": "情報セキュリティ", "audience": "all_staff", "stage": "2"}, 2026)["stage"] is None
    with pytest.raises(FormInvalid):
        session_request({"title": " ", "audience": "all_staff"}, 2026)
    with pytest.raises(FormInvalid):
        session_request({"title": "x", "audience": "all_staff", "capacity": "三十"}, 2026)


def test_staff_ids_ticked_and_typed_are_taken_once_each_in_order() -> None:
    assert staff_ids_of(["2600001"], "2600002\n2600001、2600003, 2600004") == ["2600001", "2600002", "2600003",
                                                                             "2600004"]


def test_audit_dates_are_whole_japan_days_and_an_unknown_service_is_refused() -> None:
    query = audit_query("training", "2026-12-01", "2026-12-01", " someone ")
    assert query.services == ("training",)
    assert query.params == {"from": "2026-12-01T00:00:00+09:00", "to": "2026-12-02T00:00:00+09:00",
                            "subject": "someone"}
    assert audit_query(None, None, None, None).services == ("nomination", "training", "progression", "reporting")
    with pytest.raises(FormInvalid):
        audit_query("portal", None, None, None)
    with pytest.raises(FormInvalid):
        audit_query(None, "12/01", None, None)


def test_the_merged_trail_is_newest_first_across_services() -> None:
    merged = merged_audit({
        "nomination": [{"id": 5, "at": "2026-12-02T03:00:00Z"}],
        "training": [{"id": 9, "at": "2026-12-02T04:00:00Z"}, {"id": 1, "at": "2026-12-01T23:00:00Z"}],
    })
    assert [(row["service"], row["id"]) for row in merged] == [("training", 9), ("nomination", 5), ("training", 1)]
