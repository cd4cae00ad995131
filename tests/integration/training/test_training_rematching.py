"""An unmatched completion is matched again when the session or roster it was missing arrives (P6)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from dx_shared import contracts as c
from dx_shared.envelope import CloudEvent, new_event
from dx_shared.settings import Settings
from tests.integration.training.conftest import count, deliver, outbox_count, pool_of, schedule, statement
from tests.support.bus import publish_event
from training.domain import completion_id_for

pytestmark = pytest.mark.integration


def roster(*staff_ids: str, fiscal_year: int = 2025) -> CloudEvent:
    entries = [c.StaffEntry(staff_id=staff_id, department_code="0101") for staff_id in staff_ids]
    return new_event(c.StaffImported(fiscal_year=fiscal_year, staff=entries, total=len(entries)))


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition was not met in time")


async def import_roster(client: httpx.AsyncClient, settings: Settings, event: CloudEvent) -> None:
    await publish_event(settings, event)

    async def consumed() -> bool:
        return bool(await pool_of(client).fetchval("SELECT true FROM inbox WHERE event_id::text = $1", event.id))

    await eventually(consumed)


async def unresolved(client: httpx.AsyncClient) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = (await client.get("/api/v1/completions/unmatched")).json()
    return listed


async def test_scheduling_the_session_an_unmatched_statement_named_completes_it_as_on_arrival(
    client: httpx.AsyncClient,
) -> None:
    early = statement("completed")
    first = await deliver(client, early)
    assert first.json()["reason"] == "UNKNOWN_SESSION"
    received_at = await pool_of(client).fetchval("SELECT received_at FROM unmatched_results")

    assert (await schedule(client)).status_code == 201

    row = await pool_of(client).fetchrow("SELECT completion_id, recorded_at, source FROM completions")
    assert row["completion_id"] == completion_id_for(f"xapi:{early['id']}")
    assert (row["recorded_at"], row["source"]) == (received_at, "xapi")
    assert await outbox_count(client, "SessionCompleted") == 1
    assert await outbox_count(client, "CompletionRematched") == 1, "the resolution is announced"
    assert await unresolved(client) == []
    listed = (await client.get("/api/v1/completions/unmatched", params={"include_resolved": "true"})).json()
    assert [(u["resolved"], u["resolution"], u["completion_id"]) for u in listed] == [
        (True, "completed", row["completion_id"])
    ]
    assert (await deliver(client, early)).json()["status"] == "duplicate"
    assert await count(client, "completions") == 1


async def test_a_session_scheduled_with_the_named_xapi_activity_id_resolves_it(client: httpx.AsyncClient) -> None:
    early = statement("passed")
    early["object"]["id"] = "https://lms.example.jp/courses/dx-basics"
    await deliver(client, early)

    await schedule(client, session_id="S-OTHER", move_on="completed")
    assert len(await unresolved(client)) == 1
    await schedule(
        client, session_id="S-DX", move_on="passed", xapi_activity_id="https://lms.example.jp/courses/dx-basics"
    )

    assert await pool_of(client).fetchval("SELECT session_id FROM completions") == "S-DX"
    assert await unresolved(client) == []


async def test_a_rematched_statement_that_does_not_meet_move_on_yet_is_resolved_as_progress(
    client: httpx.AsyncClient,
) -> None:
    await deliver(client, statement("completed"))
    await schedule(client, move_on="completed_and_passed")
    assert await count(client, "completions") == 0
    assert await unresolved(client) == []
    later = await deliver(client, statement("passed"))
    assert later.json()["status"] == "completed"


async def test_a_roster_listing_the_unknown_person_completes_their_statement(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await schedule(client)
    await import_roster(client, settings, roster("A1001"))
    early = statement("completed", staff_id="Z9999")
    assert (await deliver(client, early)).json()["reason"] == "UNKNOWN_STAFF"

    await import_roster(client, settings, roster("Z9999", fiscal_year=2024))
    assert await count(client, "completions") == 0
    corrected = roster("A1001", "Z9999")
    await import_roster(client, settings, corrected)

    row = await pool_of(client).fetchrow("SELECT completion_id, staff_id FROM completions")
    assert (row["completion_id"], row["staff_id"]) == (completion_id_for(f"xapi:{early['id']}"), "Z9999")
    assert await unresolved(client) == []
    await publish_event(settings, corrected)
    await import_roster(client, settings, roster("Z9999"))
    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1


async def test_an_unknown_session_then_an_unknown_person_waits_for_both(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await import_roster(client, settings, roster("A1001"))
    await deliver(client, statement("completed", staff_id="Z9999"))

    await schedule(client)
    assert [u["reason"] for u in await unresolved(client)] == ["UNKNOWN_STAFF"]
    await import_roster(client, settings, roster("Z9999"))

    assert await count(client, "completions") == 1 and await unresolved(client) == []


async def test_rematching_does_not_double_a_completion_reported_meanwhile(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await schedule(client)
    await import_roster(client, settings, roster("A1001"))
    first, second = statement("completed", staff_id="Z9999"), statement("completed", staff_id="Z9999")
    await deliver(client, first)
    await deliver(client, [second])
    assert len(await unresolved(client)) == 2

    await import_roster(client, settings, roster("Z9999"))

    assert await count(client, "completions") == 1
    assert await outbox_count(client, "SessionCompleted") == 1
    listed = (await client.get("/api/v1/completions/unmatched", params={"include_resolved": "true"})).json()
    assert sorted(u["resolution"] for u in listed) == ["already_completed", "completed"]
    assert (await deliver(client, statement("completed", staff_id="Z9999"))).json()["status"] == "already_completed"
    assert await count(client, "completions") == 1
