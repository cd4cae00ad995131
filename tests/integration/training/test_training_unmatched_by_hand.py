"""The offices resolve the unmatched-completions queue by hand: match a report to the person it meant (it
then completes exactly as an automatically matched one), or dismiss it with a reason. Only the offices may;
a refusal records nothing; a second resolution of the same report is a clear 409; both are audited."""

from __future__ import annotations

import json

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.training.conftest import count, deliver, outbox_count, pool_of, schedule, statement
from tests.integration.training.test_training_rematching import import_roster, roster, unresolved
from tests.support.identity import bearer, head_of, subject_of, trainee
from training.domain import completion_id_for

pytestmark = pytest.mark.integration


async def unmatched_report(client: httpx.AsyncClient, settings: Settings, staff_id: str = "A1O01") -> tuple[str, str]:
    """A completion of a scheduled session by a staff id the year's roster does not list (a typo)."""
    await schedule(client)
    await import_roster(client, settings, roster("A1001"))
    sent = statement("completed", staff_id=staff_id)
    receipt = (await deliver(client, sent)).json()
    assert (receipt["status"], receipt["reason"]) == ("unmatched", "UNKNOWN_STAFF")
    return receipt["unmatched_id"], f"xapi:{sent['id']}"


async def rematched_payloads(client: httpx.AsyncClient) -> list[dict[str, object]]:
    rows = await pool_of(client).fetch(
        "SELECT body FROM outbox WHERE routing_key = 'training.CompletionRematched.v1'"
    )
    return [json.loads(row["body"])["data"] for row in rows]


async def test_an_office_matches_a_report_by_hand_and_it_completes_as_an_automatic_match_would(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unmatched_id, source_key = await unmatched_report(client, settings)

    matched = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "A1001"})

    assert matched.status_code == 200, matched.text
    body = matched.json()
    assert (body["resolution"], body["staff_id"], body["session_id"]) == ("completed", "A1001", "S-2025-EL-001")
    assert body["completion_id"] == completion_id_for(source_key)
    assert body["resolved_by"] == subject_of(bearer())
    row = await pool_of(client).fetchrow("SELECT completion_id, staff_id, source FROM completions")
    assert (row["completion_id"], row["staff_id"], row["source"]) == (completion_id_for(source_key), "A1001", "xapi")
    assert await outbox_count(client, "SessionCompleted") == 1
    [announced] = await rematched_payloads(client)
    assert (announced["resolution"], announced["staff_id"], announced["actor"]) == (
        "completed", "A1001", subject_of(bearer()))
    assert await unresolved(client) == []
    listed = (await client.get("/api/v1/completions/unmatched", params={"include_resolved": "true"})).json()
    assert [(u["resolution"], u["matched_staff_id"], u["resolved_by"]) for u in listed] == [
        ("completed", "A1001", subject_of(bearer()))
    ]


async def test_a_second_match_or_dismissal_of_the_same_report_is_a_clear_conflict_and_changes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unmatched_id, _ = await unmatched_report(client, settings)
    first = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "A1001"})
    assert first.status_code == 200

    again = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "A1001"})
    dismissed = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/dismiss", json={"reason": "重複"})

    for refused in (again, dismissed):
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "UNMATCHED_ALREADY_RESOLVED"
        assert refused.json()["resolution"] == "completed"
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1
    assert await outbox_count(client, "CompletionRematched") == 1


async def test_only_the_offices_may_resolve_and_a_refusal_records_nothing_but_its_audit_row(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unmatched_id, _ = await unmatched_report(client, settings)
    for headers in (bearer("info_policy"), head_of("0101"), trainee("A1001")):
        for action, body in (("match", {"staff_id": "A1001"}), ("dismiss", {"reason": "対象外"})):
            refused = await client.post(
                f"/api/v1/completions/unmatched/{unmatched_id}/{action}", json=body, headers=headers
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "ROLE_NOT_PERMITTED"
    no_scope = bearer("dx_office", scopes=["dx.training.read"])
    refused = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "A1001"},
                                headers=no_scope)
    assert refused.json()["code"] == "SCOPE_MISSING"

    assert [u["unmatched_id"] for u in await unresolved(client)] == [unmatched_id]
    assert await count(client, "completions") == 0
    assert await outbox_count(client, "CompletionRematched") == 0
    audited = await pool_of(client).fetch(
        "SELECT subject, status, code FROM audit_log WHERE route = '/api/v1/completions/unmatched/{unmatched_id}/match'"
    )
    assert {(r["status"], r["code"]) for r in audited} == {(403, "ROLE_NOT_PERMITTED"), (403, "SCOPE_MISSING")}
    assert subject_of(trainee("A1001")) in {r["subject"] for r in audited}


async def test_a_hand_match_to_someone_not_on_the_roster_or_to_no_session_is_refused_and_records_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unmatched_id, _ = await unmatched_report(client, settings)
    nobody = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "Z0000"})
    no_session = await client.post(
        f"/api/v1/completions/unmatched/{unmatched_id}/match", json={"staff_id": "A1001", "session_id": "S-NONE"}
    )
    unknown = await client.post("/api/v1/completions/unmatched/not-an-id/match", json={"staff_id": "A1001"})

    assert (nobody.status_code, nobody.json()["code"]) == (422, "UNKNOWN_STAFF")
    assert (no_session.status_code, no_session.json()["code"]) == (404, "UNKNOWN_SESSION")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_UNMATCHED")
    assert [u["unmatched_id"] for u in await unresolved(client)] == [unmatched_id]
    assert await count(client, "completions") == 0
    assert await count(client, "session_progress") == 0
    assert await outbox_count(client, "CompletionRematched") == 0


async def test_a_dismissed_report_needs_a_reason_makes_no_completion_and_is_never_matched_again(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unmatched_id, _ = await unmatched_report(client, settings, staff_id="Z9999")
    blank = await client.post(f"/api/v1/completions/unmatched/{unmatched_id}/dismiss", json={"reason": "  "})
    assert (blank.status_code, blank.json()["code"]) == (422, "REASON_REQUIRED")
    assert await outbox_count(client, "CompletionRematched") == 0

    dismissed = await client.post(
        f"/api/v1/completions/unmatched/{unmatched_id}/dismiss", json={"reason": "研修用のテストアカウントのため"}
    )

    assert dismissed.status_code == 200, dismissed.text
    assert (dismissed.json()["resolution"], dismissed.json()["completion_id"]) == ("dismissed", None)
    [announced] = await rematched_payloads(client)
    assert (announced["resolution"], announced["reason"]) == ("dismissed", "研修用のテストアカウントのため")
    assert await unresolved(client) == []
    # The person it named joins the roster later: a dismissed report stays dismissed.
    await import_roster(client, settings, roster("A1001", "Z9999"))
    assert await count(client, "completions") == 0
    audited = await pool_of(client).fetchrow(
        "SELECT subject, status, target FROM audit_log"
        " WHERE route = '/api/v1/completions/unmatched/{unmatched_id}/dismiss' AND status = 200"
    )
    assert audited["subject"] == subject_of(bearer())
    assert audited["target"] == {"unmatched_id": unmatched_id}
