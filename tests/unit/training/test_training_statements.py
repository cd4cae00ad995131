"""The e-learning payloads: our completion document and xAPI statements, mapped to reported results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dx_shared.contracts import Audience, CompletionSource, Method, MoveOn
from training.domain import (
    Outcome,
    ReportedResult,
    Session,
    UnmatchedReason,
    UnmatchedResult,
    complete_from_report,
    listed_on_roster,
    names_session,
    person_is_known,
    unmatched_reason,
)
from training.statements import MAX_BATCH, BatchTooLarge, EmptyBatch, UnsupportedPayload, read_batch, read_document

SENT_AT = datetime(2025, 6, 1, 1, 0, tzinfo=UTC)


def statement(verb: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "6E4B0C57-0000-4000-8000-000000000001",
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": "A1001"}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"id": "https://lms.example/activities/S-2025-001"},
        "timestamp": "2025-06-01T10:00:00+09:00",
        **extra,
    }


def read(document: object) -> ReportedResult | None:
    return read_document(document, webhook_id="msg_1", sent_at=SENT_AT)


@pytest.mark.parametrize("verb", ["completed", "passed", "failed"])
def test_each_adl_verb_is_read_by_its_iri(verb: str) -> None:
    reported = read(statement(f"http://adlnet.gov/expapi/verbs/{verb}"))
    assert reported is not None
    assert reported.outcome == Outcome(completed=verb == "completed", passed=verb == "passed")
    assert (reported.staff_id, reported.session_ref, reported.source) == (
        "A1001",
        "https://lms.example/activities/S-2025-001",
        CompletionSource.XAPI,
    )


def test_a_verb_may_be_given_by_its_display_word() -> None:
    document = statement("https://other.example/verbs/x")
    document["verb"]["display"] = {"ja-JP": "修了", "en-US": "Completed"}
    reported = read(document)
    assert reported is not None and reported.outcome.completed


def test_a_verb_that_cannot_complete_anything_is_acknowledged_and_ignored() -> None:
    assert read(statement("http://adlnet.gov/expapi/verbs/launched")) is None


def test_the_statement_id_identifies_the_completion_whatever_the_delivery() -> None:
    document = statement("http://adlnet.gov/expapi/verbs/completed")
    first = read_document(document, webhook_id="msg_1", sent_at=SENT_AT)
    second = read_document(document, webhook_id="msg_2", sent_at=SENT_AT)
    assert first is not None and second is not None
    assert first.source_key == "xapi:6e4b0c57-0000-4000-8000-000000000001"
    assert first.completion_id == second.completion_id


def test_a_statement_without_id_is_identified_by_its_delivery() -> None:
    document = statement("http://adlnet.gov/expapi/verbs/completed")
    del document["id"]
    reported = read(document)
    assert reported is not None and reported.source_key == "delivery:msg_1"


def test_result_fields_are_kept() -> None:
    reported = read(
        statement(
            "http://adlnet.gov/expapi/verbs/completed",
            result={"completion": True, "success": True, "score": {"scaled": 0.85}},
        )
    )
    assert reported is not None
    assert (reported.success, reported.score, reported.outcome) == (True, 0.85, Outcome(True, True))


def test_a_statement_without_timestamp_happened_when_it_was_sent() -> None:
    document = statement("http://adlnet.gov/expapi/verbs/completed")
    del document["timestamp"]
    reported = read(document)
    assert reported is not None and reported.occurred_at == SENT_AT


@pytest.mark.parametrize(
    ("timestamp", "fiscal_year"),
    [("2025-03-31T15:30:00Z", 2025), ("2025-03-31T23:30:00+09:00", 2024), ("2025-03-31T14:59:59Z", 2024)],
)
def test_the_fiscal_year_of_a_completion_is_judged_in_japan_time(timestamp: str, fiscal_year: int) -> None:
    reported = read(statement("http://adlnet.gov/expapi/verbs/completed", timestamp=timestamp))
    assert reported is not None and reported.fiscal_year == fiscal_year


def test_our_completion_document_is_identified_by_its_completion_id_or_else_its_delivery() -> None:
    document = {
        "type": "completion",
        "session_id": "S1",
        "staff_id": "A1",
        "occurred_at": "2025-06-01T10:00:00+09:00",
        "success": True,
        "score": 92,
    }
    without_id = read(document)
    with_id = read({**document, "completion_id": "lms-42"})
    assert without_id is not None and without_id.source_key == "delivery:msg_1"
    assert with_id is not None and with_id.source_key == "completion:lms-42"
    assert with_id.source is CompletionSource.WEBHOOK and with_id.outcome == Outcome(True, True)


@pytest.mark.parametrize(
    "document",
    [
        [],
        "completion",
        {"hello": "world"},
        {"type": "completion", "session_id": "S1", "staff_id": "A1"},
        {"type": "completion", "session_id": "S1", "staff_id": "A1", "occurred_at": "2025-06-01T10:00:00"},
        {"type": "completion", "session_id": "S\u0000", "staff_id": "A1", "occurred_at": "2025-06-01T10:00:00Z"},
        {"type": "completion", "session_id": "S1", "staff_id": "A1", "occurred_at": "9999-12-31T23:00:00-05:00"},
        {"actor": {"mbox": "mailto:a@example.jp"}, "verb": {"id": "completed"}, "object": {"id": "S1"}},
        {
            "actor": {"account": {"name": "A1"}},
            "verb": {"id": "completed"},
            "object": {"id": "S1"},
            "result": {"score": {"scaled": 2}},
        },
    ],
)
def test_json_of_the_wrong_shape_is_unsupported(document: object) -> None:
    with pytest.raises(UnsupportedPayload):
        read(document)


SESSION = Session(
    "S-2025-001",
    2025,
    Method.E_LEARNING,
    Audience.ALL_STAFF,
    "情報セキュリティ",
    move_on=MoveOn.COMPLETED_AND_PASSED,
)


def test_a_report_completes_a_session_when_with_what_was_shown_before_it_meets_move_on() -> None:
    passed = read(statement("http://adlnet.gov/expapi/verbs/passed"))
    assert passed is not None
    assert complete_from_report(SESSION, passed, Outcome(), SENT_AT) is None
    completion = complete_from_report(SESSION, passed, Outcome(completed=True), SENT_AT)
    assert completion is not None
    assert (completion.session_id, completion.staff_id, completion.fiscal_year) == ("S-2025-001", "A1001", 2025)
    assert completion.recorded_at == SENT_AT and completion.occurred_at == datetime(2025, 6, 1, 1, tzinfo=UTC)


def test_an_unknown_session_or_person_leaves_a_report_unmatched() -> None:
    assert unmatched_reason(None, True) is UnmatchedReason.UNKNOWN_SESSION
    assert unmatched_reason(SESSION, False) is UnmatchedReason.UNKNOWN_STAFF
    assert unmatched_reason(SESSION, True) is None


def test_before_any_roster_of_the_year_arrives_everyone_is_known() -> None:
    assert person_is_known(None) is True


def test_a_batch_is_read_statement_by_statement_in_order() -> None:
    second = statement("http://adlnet.gov/expapi/verbs/passed", id="6E4B0C57-0000-4000-8000-000000000002")
    items = read_batch([statement("http://adlnet.gov/expapi/verbs/completed"), second], webhook_id="m", sent_at=SENT_AT)
    assert [item.reported.outcome if item.reported else None for item in items] == [
        Outcome(completed=True),
        Outcome(passed=True),
    ]
    assert [item.reported.source_key if item.reported else None for item in items] == [
        read(statement("http://adlnet.gov/expapi/verbs/completed")).source_key,  # type: ignore[union-attr]
        read(second).source_key,  # type: ignore[union-attr]
    ]


def test_statements_of_a_batch_without_ids_are_keyed_by_the_delivery_and_their_position() -> None:
    first, second = statement("completed"), statement("completed")
    del first["id"], second["id"]
    keys = [
        item.reported.source_key
        for item in read_batch([first, second], webhook_id="m", sent_at=SENT_AT)
        if item.reported
    ]
    assert keys == ["delivery:m#0", "delivery:m#1"]


def test_a_batch_with_one_unreadable_statement_is_refused_naming_its_position() -> None:
    with pytest.raises(UnsupportedPayload) as refused:
        read_batch([statement("completed"), {"actor": {}, "verb": {}, "object": {}}], webhook_id="m", sent_at=SENT_AT)
    assert refused.value.facts == {"position": 1}
    assert all(error["loc"][0] == 1 for error in refused.value.errors)


def test_a_batch_is_one_to_max_batch_statements() -> None:
    with pytest.raises(EmptyBatch):
        read_batch([], webhook_id="m", sent_at=SENT_AT)
    with pytest.raises(BatchTooLarge) as refused:
        read_batch([statement("completed")] * (MAX_BATCH + 1), webhook_id="m", sent_at=SENT_AT)
    assert refused.value.status == 413
    assert len(read_batch([statement("completed")] * MAX_BATCH, webhook_id="m", sent_at=SENT_AT)) == MAX_BATCH


def unmatched(
    session_ref: str, staff_id: str = "A1001", occurred_at: str = "2025-06-01T10:00:00+09:00"
) -> UnmatchedResult:
    reported = read(
        statement(
            "http://adlnet.gov/expapi/verbs/completed",
            object={"id": session_ref},
            actor={"account": {"name": staff_id}},
            timestamp=occurred_at,
        )
    )
    assert reported is not None
    return UnmatchedResult("u1", UnmatchedReason.UNKNOWN_SESSION, reported, SENT_AT)


def test_a_new_session_resolves_the_unmatched_results_that_name_it_by_id_or_activity() -> None:
    session = Session("S-2025-001", 2025, Method.E_LEARNING, Audience.ALL_STAFF, "基礎", xapi_activity_id="urn:lms:42")
    assert names_session(unmatched("https://lms.example/activities/S-2025-001"), session)
    assert names_session(unmatched("urn:lms:42"), session)
    assert not names_session(unmatched("https://lms.example/activities/S-2025-0011"), session)


def test_a_roster_resolves_only_results_of_its_own_fiscal_year_in_japan_time() -> None:
    late_march = unmatched("S", staff_id="Z9", occurred_at="2025-03-31T15:30:00Z")
    assert listed_on_roster(late_march, 2025, frozenset({"Z9"}))
    assert not listed_on_roster(late_march, 2024, frozenset({"Z9"}))
    assert not listed_on_roster(late_march, 2025, frozenset({"A1"}))
