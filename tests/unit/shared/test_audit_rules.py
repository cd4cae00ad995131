"""What the audit trail records, from what (pure rules)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from dx_shared.audit import NO_ROUTE, AuditRow, audit_csv, audit_entry, is_audited, parse_action, problem_code
from dx_shared.roles import Caller, Role


@pytest.mark.parametrize(
    ("method", "status", "audited"),
    [
        ("POST", 201, True),
        ("put", 200, True),
        ("PATCH", 422, True),
        ("DELETE", 503, True),
        ("GET", 200, False),
        ("GET", 404, False),
        ("GET", 401, True),
        ("GET", 403, True),
        ("HEAD", 403, True),
        ("OPTIONS", 200, False),
    ],
)
def test_state_changes_and_refusals_are_audited(method: str, status: int, audited: bool) -> None:
    assert is_audited(method, status) is audited


def test_an_entry_takes_the_caller_the_route_template_and_its_path_parameters() -> None:
    entry = audit_entry(
        method="post",
        route="/api/v1/nominations/{nomination_id}/withdraw",
        path_params={"nomination_id": "n-1"},
        status=409,
        code="NOT_NEW",
        caller=Caller(Role.DEPARTMENT, "0101", None),
        correlation_id="c-1",
    )
    assert entry is not None
    assert (entry.method, entry.route, entry.target) == ("POST", "/api/v1/nominations/{nomination_id}/withdraw", {"nomination_id": "n-1"})
    assert (entry.role, entry.department_code, entry.subject, entry.client_id) == ("department", "0101", None, None)
    assert (entry.status, entry.code, entry.correlation_id) == (409, "NOT_NEW", "c-1")


def test_a_token_callers_subject_and_client_come_first_and_the_senders_name_fills_in() -> None:
    class TokenCaller:
        role = Role.DX_OFFICE
        department_code = None
        subject = "sub-1"
        client_id = "cli"

    with_token = audit_entry(method="POST", route="/x", path_params={}, status=200, code=None, caller=TokenCaller(), subject="webhook")
    signed = audit_entry(
        method="POST", route="/webhooks/elearning", path_params=None, status=200, code=None, caller=None,
        subject="webhook", extra_target={"webhook_id": "msg_1"},
    )
    assert with_token is not None and (with_token.subject, with_token.client_id, with_token.role) == ("sub-1", "cli", "dx_office")
    assert signed is not None and (signed.subject, signed.role, signed.target) == ("webhook", None, {"webhook_id": "msg_1"})


def test_an_unaudited_request_has_no_entry_and_an_unrouted_one_no_path() -> None:
    assert audit_entry(method="GET", route="/r", path_params={}, status=200, code=None, caller=None) is None
    refused = audit_entry(method="GET", route=None, path_params=None, status=401, code="UNAUTHORIZED", caller=None)
    assert refused is not None and refused.route == NO_ROUTE


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"code": "QUOTA_EXCEEDED", "title": "x"}', "QUOTA_EXCEEDED"),
        (b'{"title": "no code"}', None),
        (b'{"code": 7}', None),
        (b"[1, 2]", None),
        (b"\xff not json", None),
    ],
)
def test_the_rule_code_is_read_from_a_problem_body(body: bytes, code: str | None) -> None:
    assert problem_code(body) == code


@pytest.mark.parametrize(
    ("action", "parsed"),
    [
        ("", (None, None)),
        ("post", ("POST", None)),
        ("/api/v1/sessions", (None, "/api/v1/sessions")),
        ("POST /api/v1/sessions", ("POST", "/api/v1/sessions")),
        ("  delete   /api/v1/x/{id} ", ("DELETE", "/api/v1/x/{id}")),
    ],
)
def test_an_action_filter_is_a_method_a_route_or_both(action: str, parsed: tuple[str | None, str | None]) -> None:
    assert parse_action(action) == parsed


def test_the_csv_is_utf8_with_a_bom_and_one_line_per_row() -> None:
    row = AuditRow(
        id=3, at=datetime(2025, 4, 1, tzinfo=UTC), subject="sub-1", client_id=None, role="hr_office",
        department_code=None, method="PUT", route="/api/v1/curricula/{fiscal_year}/{stage}",
        target={"fiscal_year": "2025", "stage": "1"}, status=200, code=None, correlation_id="c",
    )
    exported = audit_csv([row])
    assert exported.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert len(lines) == 2 and lines[0][0] == "ID"
    assert lines[1][:3] == ["3", "2025-04-01T00:00:00+00:00", "sub-1"]
    assert lines[1][8] == '{"fiscal_year": "2025", "stage": "1"}'
