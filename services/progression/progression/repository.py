"""The progression service's SQL: facts, announced decisions, and the locks that serialise a person."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from progression.domain import (
    Completion,
    CurriculumRevision,
    Decision,
    DecisionEvent,
    EmittedYear,
    FiscalYearClosing,
    Nomination,
    PersonFacts,
    Withdrawal,
)

# Facts shared by everyone (curricula, closings) and facts of one person must not be applied
# concurrently: a person's transaction holds this lock shared, a shared fact's transaction exclusively.
SHARED_FACTS_LOCK = int.from_bytes(hashlib.sha256(b"dx-progression:shared-facts").digest()[:8], "big", signed=True)


class ProgressionStore(Protocol):
    async def lock_for_person_facts(self) -> None: ...
    async def lock_for_shared_facts(self) -> None: ...
    async def lock_person(self, staff_id: str) -> None: ...
    async def add_nomination(self, staff_id: str, nomination: Nomination) -> None: ...

    async def note_nominating_department(self, nomination_event_id: str, department_code: str) -> None: ...

    async def nominated_by_department(self, staff_id: str, department_code: str) -> bool: ...
    async def add_withdrawal(self, staff_id: str, withdrawal: Withdrawal) -> None: ...
    async def add_completion(self, staff_id: str, completion: Completion) -> None: ...
    async def add_curriculum(self, revision: CurriculumRevision) -> None: ...
    async def add_closing(self, closing: FiscalYearClosing, actor: str | None) -> bool: ...
    async def closing_of(self, fiscal_year: int) -> FiscalYearClosing | None: ...
    async def people_nominated_in(self, fiscal_year: int) -> list[str]: ...
    async def facts_of(self, staff_id: str) -> PersonFacts: ...
    async def announced_for(self, staff_id: str) -> dict[int, EmittedYear]: ...
    async def save_announced(self, staff_id: str, years: Iterable[EmittedYear]) -> None: ...
    async def log_decisions(self, decisions: Iterable[Decision], payloads: Mapping[str, Any]) -> None: ...
    async def decision_history(self, staff_id: str) -> list[dict[str, Any]]: ...
    async def now(self) -> datetime: ...


class PostgresProgressionStore:
    """`ProgressionStore` on one asyncpg connection; the caller owns the transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_for_person_facts(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock_shared($1)", SHARED_FACTS_LOCK)

    async def lock_for_shared_facts(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", SHARED_FACTS_LOCK)

    async def lock_person(self, staff_id: str) -> None:
        await self._conn.execute("INSERT INTO person (staff_id) VALUES ($1) ON CONFLICT DO NOTHING", staff_id)
        await self._conn.execute("SELECT staff_id FROM person WHERE staff_id = $1 FOR UPDATE", staff_id)

    async def add_nomination(self, staff_id: str, nomination: Nomination) -> None:
        await self._conn.execute(
            "INSERT INTO nomination (event_id, staff_id, nomination_id, fiscal_year, slot)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            nomination.event_id,
            staff_id,
            nomination.nomination_id,
            nomination.fiscal_year,
            nomination.slot,
        )

    async def note_nominating_department(self, nomination_event_id: str, department_code: str) -> None:
        await self._conn.execute(
            "UPDATE nomination SET department_code = $2 WHERE event_id = $1", nomination_event_id, department_code
        )

    async def nominated_by_department(self, staff_id: str, department_code: str) -> bool:
        found = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM nomination WHERE staff_id = $1 AND department_code = $2)",
            staff_id,
            department_code,
        )
        return bool(found)

    async def add_withdrawal(self, staff_id: str, withdrawal: Withdrawal) -> None:
        await self._conn.execute(
            "INSERT INTO withdrawal (event_id, staff_id, nomination_id, fiscal_year, withdrawn_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            withdrawal.event_id,
            staff_id,
            withdrawal.nomination_id,
            withdrawal.fiscal_year,
            withdrawal.withdrawn_at,
        )

    async def add_completion(self, staff_id: str, completion: Completion) -> None:
        await self._conn.execute(
            "INSERT INTO completion (event_id, staff_id, session_id, fiscal_year, occurred_at, recorded_at, waived)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            completion.event_id,
            staff_id,
            completion.session_id,
            completion.fiscal_year,
            completion.occurred_at,
            completion.recorded_at,
            completion.waived,
        )

    async def add_curriculum(self, revision: CurriculumRevision) -> None:
        await self._conn.execute(
            "INSERT INTO curriculum_revision (event_id, fiscal_year, stage, revision, session_ids, published_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            revision.event_id,
            revision.fiscal_year,
            revision.stage,
            revision.revision,
            sorted(revision.session_ids),
            revision.published_at,
        )

    async def add_closing(self, closing: FiscalYearClosing, actor: str | None) -> bool:
        """Records the closing; False when the fiscal year was already closed."""
        inserted = await self._conn.fetchval(
            "INSERT INTO fiscal_year_closing (fiscal_year, event_id, closed_at, actor) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            closing.fiscal_year,
            closing.event_id,
            closing.closed_at,
            actor,
        )
        return bool(inserted)

    async def closing_of(self, fiscal_year: int) -> FiscalYearClosing | None:
        row = await self._conn.fetchrow(
            "SELECT event_id, fiscal_year, closed_at FROM fiscal_year_closing WHERE fiscal_year = $1", fiscal_year
        )
        return FiscalYearClosing(row["event_id"], row["fiscal_year"], row["closed_at"]) if row else None

    async def people_nominated_in(self, fiscal_year: int) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT staff_id FROM nomination WHERE fiscal_year = $1 ORDER BY staff_id", fiscal_year
        )
        return [row["staff_id"] for row in rows]

    async def facts_of(self, staff_id: str) -> PersonFacts:
        nominations = await self._conn.fetch(
            "SELECT event_id, nomination_id, fiscal_year, slot FROM nomination WHERE staff_id = $1", staff_id
        )
        withdrawals = await self._conn.fetch(
            "SELECT event_id, nomination_id, fiscal_year, withdrawn_at FROM withdrawal WHERE staff_id = $1",
            staff_id,
        )
        completions = await self._conn.fetch(
            "SELECT event_id, session_id, fiscal_year, occurred_at, recorded_at, waived"
            " FROM completion WHERE staff_id = $1",
            staff_id,
        )
        years = sorted({row["fiscal_year"] for row in nominations})
        curricula = await self._conn.fetch(
            "SELECT event_id, fiscal_year, stage, revision, session_ids, published_at FROM curriculum_revision"
            " WHERE fiscal_year = ANY($1::integer[])",
            years,
        )
        closings = await self._conn.fetch("SELECT event_id, fiscal_year, closed_at FROM fiscal_year_closing")
        return PersonFacts(
            staff_id=staff_id,
            nominations=frozenset(Nomination(**dict(row)) for row in nominations),
            withdrawals=frozenset(Withdrawal(**dict(row)) for row in withdrawals),
            completions=frozenset(Completion(**dict(row)) for row in completions),
            curricula=frozenset(
                CurriculumRevision(
                    row["event_id"],
                    row["fiscal_year"],
                    row["stage"],
                    row["revision"],
                    frozenset(row["session_ids"]),
                    row["published_at"],
                )
                for row in curricula
            ),
            closings=frozenset(FiscalYearClosing(**dict(row)) for row in closings),
        )

    async def announced_for(self, staff_id: str) -> dict[int, EmittedYear]:
        rows = await self._conn.fetch(
            "SELECT fiscal_year, event_id, event, stage, from_stage, reason, sequence, completion_event_id,"
            " completed_at"
            " FROM announced_decision WHERE staff_id = $1",
            staff_id,
        )
        return {row["fiscal_year"]: EmittedYear(**{**dict(row), "event": DecisionEvent(row["event"])}) for row in rows}

    async def save_announced(self, staff_id: str, years: Iterable[EmittedYear]) -> None:
        await self._conn.executemany(
            "INSERT INTO announced_decision"
            " (staff_id, fiscal_year, event_id, event, stage, from_stage, reason, sequence, completion_event_id,"
            " completed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (staff_id, fiscal_year) DO UPDATE SET event_id = EXCLUDED.event_id,"
            " event = EXCLUDED.event, stage = EXCLUDED.stage, from_stage = EXCLUDED.from_stage,"
            " reason = EXCLUDED.reason, sequence = EXCLUDED.sequence,"
            " completion_event_id = EXCLUDED.completion_event_id, completed_at = EXCLUDED.completed_at,"
            " updated_at = now()",
            [
                (
                    staff_id,
                    year.fiscal_year,
                    year.event_id,
                    year.event.value,
                    year.stage,
                    year.from_stage,
                    year.reason,
                    year.sequence,
                    year.completion_event_id,
                    year.completed_at,
                )
                for year in years
            ],
        )

    async def log_decisions(self, decisions: Iterable[Decision], payloads: Mapping[str, Any]) -> None:
        await self._conn.executemany(
            "INSERT INTO decision_log (event_id, staff_id, fiscal_year, event, payload)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            [(d.event_id, d.staff_id, d.fiscal_year, d.event.value, payloads[d.event_id]) for d in decisions],
        )

    async def decision_history(self, staff_id: str) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            "SELECT event_id, fiscal_year, event, payload, announced_at FROM decision_log"
            " WHERE staff_id = $1 ORDER BY seq",
            staff_id,
        )
        return [dict(row) for row in rows]

    async def now(self) -> datetime:
        moment: datetime = await self._conn.fetchval("SELECT now()")
        return moment
