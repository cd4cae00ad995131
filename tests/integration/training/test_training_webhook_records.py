"""What a delivery leaves behind: its record settled with the answer the sender got, and the session it named."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.training.conftest import (
    ACTIVITY_IRI,
    SESSION_ID,
    completion_document,
    count,
    deliver,
    outbox_count,
    pool_of,
    schedule,
    statement,
)

pytestmark = pytest.mark.integration


async def test_a_second_completion_of_a_session_in_the_same_year_is_acknowledged_without_an_event(
    client: httpx.AsyncClient,
) -> None:
    await schedule(client)
    first = await deliver(client, statement("completed"))
    second = await deliver(client, statement("completed"))
    assert (first.status_code, first.json()["status"]) == (200, "completed")
    assert (second.status_code, second.json()["status"]) == (200, "already_completed")
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_every_delivery_and_reported_result_is_kept_with_the_answer_the_sender_got(
    client: httpx.AsyncClient,
) -> None:
    await schedule(client)
    completed = statement("completed")
    launched = statement("completed")
    launched["verb"] = {"id": "http://adlnet.gov/expapi/verbs/launched", "display": {"en-US": "launched"}}
    deliveries = {
        "msg_completed": completed,
        "msg_again": completed,
        "msg_already": statement("completed"),
        "msg_not_met": statement("failed", staff_id="A2002"),
        "msg_unmatched": completion_document(session_id="S-NOPE"),
        "msg_ignored": launched,
    }
    answered = {
        msg_id: (await deliver(client, document, msg_id=msg_id)).json()["status"]
        for msg_id, document in deliveries.items()
    }
    assert answered == {
        "msg_completed": "completed",
        "msg_again": "duplicate",
        "msg_already": "already_completed",
        "msg_not_met": "not_met",
        "msg_unmatched": "unmatched",
        "msg_ignored": "ignored",
    }
    pool = pool_of(client)
    kept = {
        row["webhook_id"]: row["status"]
        for row in await pool.fetch("SELECT webhook_id, status FROM webhook_deliveries")
    }
    assert kept == answered
    reported = {
        row["webhook_id"]: row["status"] for row in await pool.fetch("SELECT webhook_id, status FROM reported_results")
    }
    assert reported == {
        msg_id: answered[msg_id] for msg_id in ("msg_completed", "msg_already", "msg_not_met", "msg_unmatched")
    }


async def test_an_activity_names_the_session_declaring_it_before_the_session_whose_id_it_ends_in(
    client: httpx.AsyncClient,
) -> None:
    await schedule(client)
    await schedule(client, session_id="S-2025-EL-002", xapi_activity_id=ACTIVITY_IRI)
    response = await deliver(client, statement("completed"))
    assert response.json()["completion"]["session_id"] == "S-2025-EL-002"
    assert ACTIVITY_IRI.endswith(SESSION_ID)
