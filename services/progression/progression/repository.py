"""The progression service's SQL: facts, announced decisions, and the locks that serialise a person."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class NewPersonFact:
    """A person's fact to store: the fact, and for a nomination the department that nominated."""

    staff_id: str
    fact: Nomination | Withdrawal | Completion
    department_code: str | None = None


@dataclass(frozen=True)
class PersonState:
    """Everything `decide` and `reconcile` need about one person, as stored."""

    facts: PersonFacts
    announced: dict[int, EmittedYear]


@dataclass(frozen=True)
class Announcement:
    """What re-deciding one person changed: the years to save and the decisions to log."""

    staff_id: str
    years: tuple[EmittedYear, ...]
    decisions: tuple[Decision, ...]
    payloads: Mapping[str, Any]


def _moment(value: str | None) -> datetime | None:
    """A timestamptz that came back as JSON text, in UTC as asyncpg returns one."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _required_moment(value: str) -> datetime:
    moment = _moment(value)
    assert moment is not None
    return moment


class ProgressionStore(Protocol):
    async def lock_for_person_facts(self) -> None: ...
    async def lock_for_shared_facts(self) -> None: ...
    async def lock_person(self, staff_id: str) -> None: ...
    async def lock_people(self, staff_ids: Sequence[str]) -> None: ...
    async def add_person_facts(self, facts: Sequence[NewPersonFact]) -> None: ...
    async def states_of(self, staff_ids: Sequence[str]) -> dict[str, PersonState]: ...
    async def save_announcements(self, announcements: Sequence[Announcement]) -> None: ...
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

    async def lock_people(self, staff_ids: Sequence[str]) -> None:
        """Takes the person-facts lock (shared) and locks the people's rows, creating the missing ones, in
        staff-id order (as `lock_person` does one by one): two statements whatever the number of people."""
        ordered = sorted(set(staff_ids))
        await self._conn.execute(
            "INSERT INTO person (staff_id) SELECT staff_id FROM (SELECT pg_advisory_xact_lock_shared($1)) AS held,"
            " unnest($2::text[]) WITH ORDINALITY AS wanted (staff_id, position) ORDER BY position"
            " ON CONFLICT DO NOTHING",
            SHARED_FACTS_LOCK,
            ordered,
        )
        await self._conn.execute(
            "SELECT staff_id FROM person WHERE staff_id = ANY($1::text[]) ORDER BY staff_id FOR UPDATE", ordered
        )

    async def add_person_facts(self, facts: Sequence[NewPersonFact]) -> None:
        """Stores nominations (with their department), withdrawals and completions in one statement."""
        nominations = [item for item in facts if isinstance(item.fact, Nomination)]
        withdrawals = [item for item in facts if isinstance(item.fact, Withdrawal)]
        completions = [item for item in facts if isinstance(item.fact, Completion)]
        n = [item.fact for item in nominations if isinstance(item.fact, Nomination)]
        w = [item.fact for item in withdrawals if isinstance(item.fact, Withdrawal)]
        c = [item.fact for item in completions if isinstance(item.fact, Completion)]
        await self._conn.execute(
            """WITH nominated AS (
                 INSERT INTO nomination (event_id, staff_id, nomination_id, fiscal_year, slot, department_code)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[])
                 ON CONFLICT DO NOTHING),
               withdrawn AS (
                 INSERT INTO withdrawal (event_id, staff_id, nomination_id, fiscal_year, withdrawn_at)
                 SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::integer[], $11::timestamptz[])
                 ON CONFLICT DO NOTHING),
               completed AS (
                 INSERT INTO completion
                   (event_id, staff_id, session_id, fiscal_year, occurred_at, recorded_at, waived)
                 SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::integer[], $16::timestamptz[],
                                      $17::timestamptz[], $18::boolean[])
                 ON CONFLICT DO NOTHING)
               SELECT 1""",
            [f.event_id for f in n],
            [item.staff_id for item in nominations],
            [f.nomination_id for f in n],
            [f.fiscal_year for f in n],
            [f.slot for f in n],
            [item.department_code for item in nominations],
            [f.event_id for f in w],
            [item.staff_id for item in withdrawals],
            [f.nomination_id for f in w],
            [f.fiscal_year for f in w],
            [f.withdrawn_at for f in w],
            [f.event_id for f in c],
            [item.staff_id for item in completions],
            [f.session_id for f in c],
            [f.fiscal_year for f in c],
            [f.occurred_at for f in c],
            [f.recorded_at for f in c],
            [f.waived for f in c],
        )

    async def states_of(self, staff_ids: Sequence[str]) -> dict[str, PersonState]:
        """`facts_of` and `announced_for` of several people in one statement."""
        row = await self._conn.fetchrow(
            """SELECT
                 (SELECT json_agg(t) FROM (SELECT staff_id, event_id, nomination_id, fiscal_year, slot
                    FROM nomination WHERE staff_id = ANY($1::text[])) AS t) AS nominations,
                 (SELECT json_agg(t) FROM (SELECT staff_id, event_id, nomination_id, fiscal_year, withdrawn_at
                    FROM withdrawal WHERE staff_id = ANY($1::text[])) AS t) AS withdrawals,
                 (SELECT json_agg(t) FROM (SELECT staff_id, event_id, session_id, fiscal_year, occurred_at,
                    recorded_at, waived FROM completion WHERE staff_id = ANY($1::text[])) AS t) AS completions,
                 (SELECT json_agg(t) FROM (SELECT event_id, fiscal_year, stage, revision, session_ids, published_at
                    FROM curriculum_revision WHERE fiscal_year IN
                      (SELECT fiscal_year FROM nomination WHERE staff_id = ANY($1::text[]))) AS t) AS curricula,
                 (SELECT json_agg(t) FROM (SELECT event_id, fiscal_year, closed_at FROM fiscal_year_closing) AS t)
                   AS closings,
                 (SELECT json_agg(t) FROM (SELECT staff_id, fiscal_year, event_id, event, stage, from_stage, reason,
                    sequence, completion_event_id, completed_at
                    FROM announced_decision WHERE staff_id = ANY($1::text[])) AS t) AS announced""",
            list(staff_ids),
        )
        assert row is not None

        def rows(name: str) -> list[dict[str, Any]]:
            value = row[name]
            loaded: list[dict[str, Any]] = (json.loads(value) if isinstance(value, str) else value) or []
            return loaded

        nominations = rows("nominations")
        withdrawals = rows("withdrawals")
        completions = rows("completions")
        curricula = [
            CurriculumRevision(
                r["event_id"],
                r["fiscal_year"],
                r["stage"],
                r["revision"],
                frozenset(r["session_ids"]),
                _moment(r["published_at"]),
            )
            for r in rows("curricula")
        ]
        closings = frozenset(
            FiscalYearClosing(r["event_id"], r["fiscal_year"], _required_moment(r["closed_at"]))
            for r in rows("closings")
        )
        announced = rows("announced")
        states: dict[str, PersonState] = {}
        for staff_id in staff_ids:
            years = {r["fiscal_year"] for r in nominations if r["staff_id"] == staff_id}
            facts = PersonFacts(
                staff_id=staff_id,
                nominations=frozenset(
                    Nomination(r["event_id"], r["nomination_id"], r["fiscal_year"], r["slot"])
                    for r in nominations
                    if r["staff_id"] == staff_id
                ),
                withdrawals=frozenset(
                    Withdrawal(r["event_id"], r["nomination_id"], r["fiscal_year"], _required_moment(r["withdrawn_at"]))
                    for r in withdrawals
                    if r["staff_id"] == staff_id
                ),
                completions=frozenset(
                    Completion(
                        r["event_id"],
                        r["session_id"],
                        r["fiscal_year"],
                        _required_moment(r["occurred_at"]),
                        _required_moment(r["recorded_at"]),
                        r["waived"],
                    )
                    for r in completions
                    if r["staff_id"] == staff_id
                ),
                curricula=frozenset(revision for revision in curricula if revision.fiscal_year in years),
                closings=closings,
            )
            states[staff_id] = PersonState(
                facts,
                {
                    r["fiscal_year"]: EmittedYear(
                        fiscal_year=r["fiscal_year"],
                        event_id=r["event_id"],
                        event=DecisionEvent(r["event"]),
                        stage=r["stage"],
                        from_stage=r["from_stage"],
                        reason=r["reason"],
                        sequence=r["sequence"],
                        completion_event_id=r["completion_event_id"],
                        completed_at=_moment(r["completed_at"]),
                    )
                    for r in announced
                    if r["staff_id"] == staff_id
                },
            )
        return states

    async def save_announcements(self, announcements: Sequence[Announcement]) -> None:
        """`save_announced` and `log_decisions` of several people in one statement."""
        years = [(a.staff_id, year) for a in announcements for year in a.years]
        decisions = [decision for a in announcements for decision in a.decisions]
        payloads = {key: value for a in announcements for key, value in a.payloads.items()}
        await self._conn.execute(
            """WITH saved AS (
                 INSERT INTO announced_decision
                   (staff_id, fiscal_year, event_id, event, stage, from_stage, reason, sequence,
                    completion_event_id, completed_at)
                 SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::integer[],
                                      $6::integer[], $7::text[], $8::integer[], $9::text[], $10::timestamptz[])
                 ON CONFLICT (staff_id, fiscal_year) DO UPDATE SET event_id = EXCLUDED.event_id,
                   event = EXCLUDED.event, stage = EXCLUDED.stage, from_stage = EXCLUDED.from_stage,
                   reason = EXCLUDED.reason, sequence = EXCLUDED.sequence,
                   completion_event_id = EXCLUDED.completion_event_id, completed_at = EXCLUDED.completed_at,
                   updated_at = now()),
               logged AS (
                 INSERT INTO decision_log (event_id, staff_id, fiscal_year, event, payload)
                 SELECT event_id, staff_id, fiscal_year, event, payload::jsonb
                 FROM unnest($11::text[], $12::text[], $13::integer[], $14::text[], $15::text[])
                   WITH ORDINALITY AS d (event_id, staff_id, fiscal_year, event, payload, position)
                 ORDER BY position
                 ON CONFLICT DO NOTHING)
               SELECT 1""",
            [staff_id for staff_id, _ in years],
            [year.fiscal_year for _, year in years],
            [year.event_id for _, year in years],
            [year.event.value for _, year in years],
            [year.stage for _, year in years],
            [year.from_stage for _, year in years],
            [year.reason for _, year in years],
            [year.sequence for _, year in years],
            [year.completion_event_id for _, year in years],
            [year.completed_at for _, year in years],
            [d.event_id for d in decisions],
            [d.staff_id for d in decisions],
            [d.fiscal_year for d in decisions],
            [d.event.value for d in decisions],
            [json.dumps(payloads[d.event_id]) for d in decisions],
        )

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
