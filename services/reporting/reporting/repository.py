"""SQL of the reporting service: the projection rows and tallies it writes, and the reports it reads.

Tables are unqualified: the connection's search_path names the schema (the live one, or the fresh
schema a rebuild fills). A row is created and locked in one round trip (`INSERT … ON CONFLICT DO
UPDATE … RETURNING *` locks the existing row), so competing consumers serialise on the same key. Round
trips are what an event costs, so the rows shared by many events (tallies, stream counters) are
written together, last, by `finish_event`, and held only until the commit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dx_shared.envelope import CloudEvent
from reporting.domain import (
    Attendance,
    BaselineCount,
    BaselinePerson,
    Decision,
    Department,
    DepartmentCount,
    Nomination,
    PlanCount,
    SessionCount,
    StageCompletion,
    StageYearTally,
    TallyKey,
    TraineeYear,
)

Record = Mapping[str, Any]


@dataclass(frozen=True)
class CompletionContext:
    """What a new completion record is judged against: its year's closing and its session's audience."""

    closed_at: datetime | None
    audience: str | None


@dataclass(frozen=True)
class _TallyTable:
    name: str
    keys: tuple[tuple[str, str], ...]  # (column, SQL array type)
    measures: Mapping[str, str]  # measure -> column


_TALLY_TABLES = (
    _TallyTable("plan_tally", (("fiscal_year", "int"), ("stage", "int")),
                {"entered": "entered", "new": "new", "completed": "completed"}),
    _TallyTable("department_tally", (("fiscal_year", "int"), ("department_code", "text")),
                {"recommended": "recommended", "self": "self_slot", "completions": "completions"}),
    _TallyTable("baseline_tally", (("fiscal_year", "int"), ("department_code", "text")),
                {"staff": "staff", "staff_done": "staff_done", "managers": "managers",
                 "managers_done": "managers_done"}),
    _TallyTable("session_tally", (("session_id", "text"),), {"completions": "completions", "waived": "waived"}),
)
_TALLY_KINDS: Mapping[type, _TallyTable] = dict(
    zip((PlanCount, DepartmentCount, BaselineCount, SessionCount), _TALLY_TABLES, strict=True)
)
STREAM_SHARDS = 64


def _tally_key(key: TallyKey) -> tuple[Any, ...]:
    if isinstance(key, PlanCount):
        return (key.fiscal_year, key.stage)
    if isinstance(key, DepartmentCount | BaselineCount):
        return (key.fiscal_year, key.department_code)
    return (key.session_id,)


def _finish_event_statement() -> str:
    """Every tally change of an event (or a batch of them) and their streams' counters, in one statement.

    Tally rows are shared by many events (a year's stage, a session), so they are written last and
    locked only until the commit; each table's rows are written in key order. The stream counter is
    split over `STREAM_SHARDS` rows per routing key, one per database session (backend pid), so
    concurrent consumers never wait for each other on it; the report sums the shards.
    """
    parts, position = [], 0
    for table in _TALLY_TABLES:
        columns = [column for column, _ in table.keys] + list(table.measures.values())
        types = [sql_type for _, sql_type in table.keys] + ["int"] * len(table.measures)
        arrays = ", ".join(f"${position + i + 1}::{sql_type}[]" for i, sql_type in enumerate(types))
        position += len(types)
        keys = ", ".join(column for column, _ in table.keys)
        updates = ", ".join(f"{m} = {table.name}.{m} + EXCLUDED.{m}" for m in table.measures.values())
        parts.append(
            f"{table.name}_change AS (INSERT INTO {table.name} ({', '.join(columns)}) "
            f"SELECT * FROM unnest({arrays}) ON CONFLICT ({keys}) DO UPDATE SET {updates})"
        )
    stream = position + 1
    return (
        "WITH " + ",\n".join(parts) + "\n"
        "INSERT INTO stream_health (routing_key, shard, events, last_event_time, last_received_at) "
        f"SELECT routing_key, pg_backend_pid() % {STREAM_SHARDS}, events, last_event_time, last_received_at "
        f"FROM unnest(${stream}::text[], ${stream + 1}::int[], ${stream + 2}::timestamptz[], "
        f"${stream + 3}::timestamptz[]) AS s (routing_key, events, last_event_time, last_received_at) "
        "ON CONFLICT (routing_key, shard) DO UPDATE SET events = stream_health.events + EXCLUDED.events, "
        "last_event_time = GREATEST(stream_health.last_event_time, EXCLUDED.last_event_time), "
        "last_received_at = GREATEST(stream_health.last_received_at, EXCLUDED.last_received_at)"
    )


_FINISH_EVENT = _finish_event_statement()


def _tally_arguments(pending: Mapping[TallyKey, int]) -> list[list[Any]]:
    """The unnest arrays of `_FINISH_EVENT`: per table, one row per key with a delta per measure."""
    arguments: list[list[Any]] = []
    for table in _TALLY_TABLES:
        rows: dict[tuple[Any, ...], dict[str, int]] = {}
        for key, delta in pending.items():
            if _TALLY_KINDS[type(key)] is table and delta:
                rows.setdefault(_tally_key(key), dict.fromkeys(table.measures, 0))[key.measure] += delta
        ordered = sorted(rows.items())
        for index in range(len(table.keys)):
            arguments.append([key[index] for key, _ in ordered])
        for measure in table.measures:
            arguments.append([deltas[measure] for _, deltas in ordered])
    return arguments


def _decision(fact: Mapping[str, Any]) -> Decision:
    return Decision(
        kind=fact["kind"], stage=fact["stage"], from_stage=fact["from_stage"],
        decided_at=datetime.fromisoformat(fact["decided_at"]), event_id=fact["event_id"],
        corrects=fact["corrects"],
    )


def _decision_fact(decision: Decision) -> dict[str, Any]:
    return {
        "kind": decision.kind, "stage": decision.stage, "from_stage": decision.from_stage,
        "decided_at": decision.decided_at.isoformat(), "event_id": decision.event_id,
        "corrects": decision.corrects,
    }


def _completion(fact: Mapping[str, Any]) -> StageCompletion:
    return StageCompletion(
        stage=fact["stage"], completed_at=datetime.fromisoformat(fact["completed_at"]),
        decision_id=fact["decision_id"],
    )


def _completion_fact(completion: StageCompletion) -> dict[str, Any]:
    return {
        "stage": completion.stage, "completed_at": completion.completed_at.isoformat(),
        "decision_id": completion.decision_id,
    }


def _trainee_year(row: Record) -> TraineeYear:
    return TraineeYear(
        staff_id=row["staff_id"], fiscal_year=row["fiscal_year"],
        decisions=tuple(_decision(fact) for fact in row["decisions"]),
        completions=tuple(_completion(fact) for fact in row["completions"]),
        department_code=row["department_code"],
    )


def _nomination(row: Record) -> Nomination:
    return Nomination(
        nomination_id=row["nomination_id"], staff_id=row["staff_id"], fiscal_year=row["fiscal_year"],
        department_code=row["department_code"], slot=row["slot"], nominated=row["nominated"],
        withdrawn=row["withdrawn"], withdrawn_at=row["withdrawn_at"],
    )


def _baseline_person(row: Record) -> BaselinePerson:
    return BaselinePerson(
        fiscal_year=row["fiscal_year"], staff_id=row["staff_id"], on_roster=row["on_roster"],
        department_code=row["department_code"], is_manager=row["is_manager"],
        all_staff_sessions=row["all_staff_sessions"], managers_sessions=row["managers_sessions"],
    )


class ProjectionStore:
    """The projection rows and tallies in the connection's current schema, inside its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._pending_tallies: Counter[TallyKey] = Counter()

    async def mark_projected(self, event_id: str) -> bool:
        fresh = await self.conn.fetchval(
            "INSERT INTO projected_event (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", event_id
        )
        return bool(fresh)

    async def log_event(self, event: CloudEvent, routing_key: str) -> datetime | None:
        """Stores the consumed event as received; None when it is a duplicate.

        The event log is the live service's one record of the events it applied (it deduplicates them, and
        `reporting.rebuild` replays it); `projected_event` is the rebuild's own record in the fresh schema.
        """
        return (await self.log_events([(event, routing_key)])).get(event.id)

    async def log_events(self, events: Sequence[tuple[CloudEvent, str]]) -> dict[str, datetime]:
        """`log_event` for a batch in one statement, in order: the received time of each event not yet logged."""
        rows = await self.conn.fetch(
            """INSERT INTO event_log (event_id, event_type, routing_key, event_time, body)
               SELECT event_id, event_type, routing_key, event_time, body::jsonb
               FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) WITH ORDINALITY
                 AS e (event_id, event_type, routing_key, event_time, body, position)
               ORDER BY position
               ON CONFLICT (event_id) DO NOTHING RETURNING event_id, received_at""",
            [event.id for event, _ in events],
            [event.type for event, _ in events],
            [routing_key for _, routing_key in events],
            [event.time for event, _ in events],
            [event.model_dump_json(exclude_none=True) for event, _ in events],
        )
        return {row["event_id"]: row["received_at"] for row in rows}

    def apply_tallies(self, difference: Mapping[TallyKey, int]) -> None:
        """Adds to the event's tally changes, written together by `finish_event`."""
        self._pending_tallies.update(difference)

    async def finish_event(self, routing_key: str, event_time: datetime, received_at: datetime) -> None:
        await self.finish_events([(routing_key, event_time, received_at)])

    async def finish_events(self, events: Sequence[tuple[str, datetime, datetime]]) -> None:
        """Writes the pending tally changes and counts (routing key, event time, received at) per stream."""
        pending, self._pending_tallies = self._pending_tallies, Counter()
        streams: dict[str, tuple[int, datetime, datetime]] = {}
        for routing_key, event_time, received_at in events:
            count, latest, received = streams.get(routing_key, (0, event_time, received_at))
            streams[routing_key] = (count + 1, max(latest, event_time), max(received, received_at))
        keys = sorted(streams)
        await self.conn.execute(
            _FINISH_EVENT,
            *_tally_arguments(pending),
            keys,
            [streams[key][0] for key in keys],
            [streams[key][1] for key in keys],
            [streams[key][2] for key in keys],
        )

    # -- trainee-years and nominations

    async def lock_trainee_year(self, staff_id: str, fiscal_year: int) -> TraineeYear:
        row = await self.conn.fetchrow(
            """INSERT INTO trainee_year (staff_id, fiscal_year) VALUES ($1, $2)
                ON CONFLICT (staff_id, fiscal_year) DO UPDATE SET staff_id = EXCLUDED.staff_id RETURNING *""",
            staff_id, fiscal_year,
        )
        return _trainee_year(row)

    async def save_trainee_year(self, year: TraineeYear) -> None:
        decision = year.decision
        await self.conn.execute(
            """UPDATE trainee_year SET decision_kind = $3, stage = $4, from_stage = $5, decided_at = $6,
                 decision_event_id = $7, completed_stage = $8, completed_at = $9, department_code = $10,
                 decisions = $11, completions = $12
               WHERE staff_id = $1 AND fiscal_year = $2""",
            year.staff_id, year.fiscal_year,
            decision.kind if decision else None, year.stage,
            decision.from_stage if decision else None, decision.decided_at if decision else None,
            decision.event_id if decision else None,
            year.completed_stage, year.completed_at, year.department_code,
            [_decision_fact(known) for known in year.decisions],
            [_completion_fact(known) for known in year.completions],
        )

    async def lock_trainee_years(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], TraineeYear]:
        """`lock_trainee_year` of several trainee-years in one statement, in key order."""
        ordered = sorted(set(keys))
        rows = await self.conn.fetch(
            """INSERT INTO trainee_year (staff_id, fiscal_year)
               SELECT staff_id, fiscal_year FROM unnest($1::text[], $2::integer[]) WITH ORDINALITY
                 AS k (staff_id, fiscal_year, position) ORDER BY position
               ON CONFLICT (staff_id, fiscal_year) DO UPDATE SET staff_id = EXCLUDED.staff_id RETURNING *""",
            [staff_id for staff_id, _ in ordered], [year for _, year in ordered],
        )
        return {(row["staff_id"], row["fiscal_year"]): _trainee_year(row) for row in rows}

    async def nominations_of_trainee_years(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], list[Nomination]]:
        """`nominations_of` several trainee-years in one statement."""
        rows = await self.conn.fetch(
            """SELECT n.* FROM nomination n
               JOIN unnest($1::text[], $2::integer[]) AS k (staff_id, fiscal_year)
                 ON n.staff_id = k.staff_id AND n.fiscal_year = k.fiscal_year""",
            [staff_id for staff_id, _ in keys], [year for _, year in keys],
        )
        found: dict[tuple[str, int], list[Nomination]] = {key: [] for key in keys}
        for row in rows:
            found[(row["staff_id"], row["fiscal_year"])].append(_nomination(row))
        return found

    async def save_trainee_years(self, years: Sequence[TraineeYear]) -> None:
        """`save_trainee_year` of several trainee-years in one statement."""
        await self.conn.execute(
            """UPDATE trainee_year t SET decision_kind = y.decision_kind, stage = y.stage, from_stage = y.from_stage,
                 decided_at = y.decided_at, decision_event_id = y.decision_event_id,
                 completed_stage = y.completed_stage, completed_at = y.completed_at,
                 department_code = y.department_code, decisions = y.decisions::jsonb,
                 completions = y.completions::jsonb
               FROM unnest($1::text[], $2::integer[], $3::text[], $4::integer[], $5::integer[], $6::timestamptz[],
                           $7::text[], $8::integer[], $9::timestamptz[], $10::text[], $11::text[], $12::text[])
                 AS y (staff_id, fiscal_year, decision_kind, stage, from_stage, decided_at, decision_event_id,
                       completed_stage, completed_at, department_code, decisions, completions)
               WHERE t.staff_id = y.staff_id AND t.fiscal_year = y.fiscal_year""",
            [year.staff_id for year in years],
            [year.fiscal_year for year in years],
            [year.decision.kind if year.decision else None for year in years],
            [year.stage for year in years],
            [year.decision.from_stage if year.decision else None for year in years],
            [year.decision.decided_at if year.decision else None for year in years],
            [year.decision.event_id if year.decision else None for year in years],
            [year.completed_stage for year in years],
            [year.completed_at for year in years],
            [year.department_code for year in years],
            [json.dumps([_decision_fact(known) for known in year.decisions]) for year in years],
            [json.dumps([_completion_fact(known) for known in year.completions]) for year in years],
        )

    async def lock_nomination(self, nomination_id: str, staff_id: str, fiscal_year: int) -> Nomination:
        row = await self.conn.fetchrow(
            """INSERT INTO nomination (nomination_id, staff_id, fiscal_year) VALUES ($1, $2, $3)
               ON CONFLICT (nomination_id) DO UPDATE SET nomination_id = EXCLUDED.nomination_id RETURNING *""",
            nomination_id, staff_id, fiscal_year,
        )
        return _nomination(row)

    async def save_nomination(self, nomination: Nomination) -> None:
        await self.conn.execute(
            """UPDATE nomination SET department_code = $2, slot = $3, nominated = $4, withdrawn = $5,
                 withdrawn_at = $6
               WHERE nomination_id = $1""",
            nomination.nomination_id, nomination.department_code, nomination.slot,
            nomination.nominated, nomination.withdrawn, nomination.withdrawn_at,
        )

    async def nominations_of(self, staff_id: str, fiscal_year: int) -> list[Nomination]:
        rows = await self.conn.fetch(
            "SELECT * FROM nomination WHERE staff_id = $1 AND fiscal_year = $2", staff_id, fiscal_year
        )
        return [_nomination(row) for row in rows]

    # -- organisation

    async def save_departments(self, fiscal_year: int, departments: Sequence[Department]) -> None:
        await self.conn.executemany(
            """INSERT INTO department (fiscal_year, code, name, bureau, active) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (fiscal_year, code) DO UPDATE SET name = EXCLUDED.name, bureau = EXCLUDED.bureau,
                 active = EXCLUDED.active""",
            [(fiscal_year, d.code, d.name, d.bureau, d.active) for d in departments],
        )

    async def place_departments(self, fiscal_year: int, order: Sequence[str]) -> None:
        """The organisation's order: each department's place in the imported list."""
        await self.conn.execute(
            """UPDATE department d SET position = o.position
               FROM unnest($2::text[]) WITH ORDINALITY AS o(code, position)
               WHERE d.fiscal_year = $1 AND d.code = o.code""",
            fiscal_year, list(order),
        )

    async def remove_departments(self, fiscal_year: int, codes: Sequence[str]) -> None:
        await self.conn.execute(
            "DELETE FROM department WHERE fiscal_year = $1 AND code = ANY($2::text[])", fiscal_year, list(codes)
        )

    async def lock_baseline_people(self, fiscal_year: int, staff_ids: Iterable[str]) -> dict[str, BaselinePerson]:
        ids = sorted(set(staff_ids))
        if not ids:
            return {}
        rows = await self.conn.fetch(
            """INSERT INTO baseline_person (fiscal_year, staff_id) SELECT $1, unnest($2::text[])
               ON CONFLICT (fiscal_year, staff_id) DO UPDATE SET staff_id = EXCLUDED.staff_id RETURNING *""",
            fiscal_year, ids,
        )
        return {row["staff_id"]: _baseline_person(row) for row in rows}

    async def save_baseline_people(self, people: Sequence[BaselinePerson]) -> None:
        await self.conn.executemany(
            """UPDATE baseline_person SET on_roster = $3, department_code = $4, is_manager = $5,
                 all_staff_sessions = $6, managers_sessions = $7
               WHERE fiscal_year = $1 AND staff_id = $2""",
            [(p.fiscal_year, p.staff_id, p.on_roster, p.department_code, p.is_manager,
              p.all_staff_sessions, p.managers_sessions) for p in people],
        )

    # -- sessions and completions

    async def lock_session_key(self, session_id: str) -> None:
        """Serialises a session's scheduling with the first completions of it, which may not exist yet."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('session:' || $1, 0))", session_id)

    async def lock_for_completion(self, session_id: str, fiscal_year: int) -> None:
        """`lock_session_key` and the shared `lock_closure` of a completion, in one round trip."""
        await self.conn.execute(
            """SELECT pg_advisory_xact_lock(hashtextextended('session:' || $1, 0)),
                      pg_advisory_xact_lock_shared(hashtextextended('closure:' || $2, 0))""",
            session_id, str(fiscal_year),
        )

    async def save_session(self, values: Mapping[str, Any]) -> str | None:
        """Upserts the session; returns the audience it had before (None when it is new)."""
        previous = await self.conn.fetchval(
            "SELECT audience FROM session WHERE session_id = $1 FOR UPDATE", values["session_id"]
        )
        await self.conn.execute(
            """INSERT INTO session (session_id, fiscal_year, method, audience, stage, title, starts_at, capacity)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (session_id) DO UPDATE SET fiscal_year = EXCLUDED.fiscal_year,
                 method = EXCLUDED.method, audience = EXCLUDED.audience, stage = EXCLUDED.stage,
                 title = EXCLUDED.title, starts_at = EXCLUDED.starts_at, capacity = EXCLUDED.capacity""",
            values["session_id"], values["fiscal_year"], values["method"], values["audience"], values["stage"],
            values["title"], values["starts_at"], values["capacity"],
        )
        return previous  # type: ignore[no-any-return]

    async def save_curriculum(self, fiscal_year: int, stage: int, revision: int, session_ids: list[str]) -> None:
        await self.conn.execute(
            """INSERT INTO curriculum (fiscal_year, stage, revision, session_ids, all_session_ids)
               VALUES ($1, $2, $3, $4, $4)
               ON CONFLICT (fiscal_year, stage) DO UPDATE SET
                 revision = GREATEST(curriculum.revision, EXCLUDED.revision),
                 session_ids = CASE WHEN curriculum.revision < EXCLUDED.revision THEN EXCLUDED.session_ids
                                    ELSE curriculum.session_ids END,
                 all_session_ids = ARRAY(SELECT DISTINCT s FROM unnest(curriculum.all_session_ids
                                         || EXCLUDED.all_session_ids) AS s ORDER BY s)""",
            fiscal_year, stage, revision, session_ids,
        )

    async def add_completion_record(self, values: Mapping[str, Any]) -> CompletionContext | None:
        """Stores the completion record; None when it is known already, else what judging it needs."""
        row = await self.conn.fetchrow(
            """WITH added AS (
                 INSERT INTO completion_record (record_id, kind, session_id, staff_id, fiscal_year, method, source,
                   occurred_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING RETURNING true AS fresh)
               SELECT (SELECT closed_at FROM fiscal_year_closure WHERE fiscal_year = $5) AS closed_at,
                      (SELECT audience FROM session WHERE session_id = $3) AS audience
               FROM added""",
            values["record_id"], values["kind"], values["session_id"], values["staff_id"], values["fiscal_year"],
            values.get("method"), values.get("source"), values.get("occurred_at"), values.get("recorded_at"),
        )
        return CompletionContext(row["closed_at"], row["audience"]) if row is not None else None

    async def lock_attendance(self, session_id: str, staff_id: str, fiscal_year: int) -> tuple[Attendance, int]:
        row = await self.conn.fetchrow(
            """INSERT INTO attendance (session_id, staff_id, fiscal_year) VALUES ($1, $2, $3)
               ON CONFLICT (session_id, staff_id) DO UPDATE SET session_id = EXCLUDED.session_id RETURNING *""",
            session_id, staff_id, fiscal_year,
        )
        return Attendance(session_id, staff_id, row["completions"], row["waivers"]), row["fiscal_year"]

    async def save_attendance(self, attendance: Attendance) -> None:
        await self.conn.execute(
            "UPDATE attendance SET completions = $3, waivers = $4 WHERE session_id = $1 AND staff_id = $2",
            attendance.session_id, attendance.staff_id, attendance.completions, attendance.waivers,
        )

    async def lock_for_completions(self, session_ids: Iterable[str], fiscal_years: Iterable[int]) -> None:
        """`lock_for_completion` of a batch of completions in one statement: every session's lock, then
        every year's shared closure lock, each in key order."""
        await self.conn.execute(
            """SELECT count(*) FROM (
                 SELECT pg_advisory_xact_lock(hashtextextended('session:' || s, 0)) FROM unnest($1::text[]) AS s
                 UNION ALL
                 SELECT pg_advisory_xact_lock_shared(hashtextextended('closure:' || y, 0))
                 FROM unnest($2::text[]) AS y) AS held""",
            sorted(set(session_ids)), sorted({str(year) for year in fiscal_years}),
        )

    async def add_completion_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, CompletionContext]:
        """`add_completion_record` of a batch in one statement: the context of each record new here."""
        rows = await self.conn.fetch(
            """WITH added AS (
                 INSERT INTO completion_record (record_id, kind, session_id, staff_id, fiscal_year, method, source,
                   occurred_at, recorded_at)
                 SELECT record_id, kind, session_id, staff_id, fiscal_year, method, source, occurred_at, recorded_at
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::text[], $7::text[],
                             $8::timestamptz[], $9::timestamptz[]) WITH ORDINALITY
                   AS r (record_id, kind, session_id, staff_id, fiscal_year, method, source, occurred_at,
                         recorded_at, position)
                 ORDER BY position
                 ON CONFLICT DO NOTHING RETURNING record_id, session_id, fiscal_year)
               SELECT a.record_id,
                      (SELECT closed_at FROM fiscal_year_closure c WHERE c.fiscal_year = a.fiscal_year) AS closed_at,
                      (SELECT audience FROM session s WHERE s.session_id = a.session_id) AS audience
               FROM added a""",
            [r["record_id"] for r in records], [r["kind"] for r in records], [r["session_id"] for r in records],
            [r["staff_id"] for r in records], [r["fiscal_year"] for r in records],
            [r.get("method") for r in records], [r.get("source") for r in records],
            [r.get("occurred_at") for r in records], [r.get("recorded_at") for r in records],
        )
        return {row["record_id"]: CompletionContext(row["closed_at"], row["audience"]) for row in rows}

    async def lock_attendances(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str], tuple[Attendance, int]]:
        """`lock_attendance` of several (session, person, year) in one statement, in key order."""
        first: dict[tuple[str, str], int] = {}
        for session_id, staff_id, fiscal_year in keys:
            first.setdefault((session_id, staff_id), fiscal_year)
        ordered = sorted(first)
        rows = await self.conn.fetch(
            """INSERT INTO attendance (session_id, staff_id, fiscal_year)
               SELECT session_id, staff_id, fiscal_year FROM unnest($1::text[], $2::text[], $3::integer[])
                 WITH ORDINALITY AS k (session_id, staff_id, fiscal_year, position) ORDER BY position
               ON CONFLICT (session_id, staff_id) DO UPDATE SET session_id = EXCLUDED.session_id RETURNING *""",
            [key[0] for key in ordered], [key[1] for key in ordered], [first[key] for key in ordered],
        )
        return {
            (row["session_id"], row["staff_id"]): (
                Attendance(row["session_id"], row["staff_id"], row["completions"], row["waivers"]),
                row["fiscal_year"],
            )
            for row in rows
        }

    async def save_attendances(self, attendances: Sequence[Attendance]) -> None:
        await self.conn.execute(
            """UPDATE attendance a SET completions = n.completions, waivers = n.waivers
               FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[])
                 AS n (session_id, staff_id, completions, waivers)
               WHERE a.session_id = n.session_id AND a.staff_id = n.staff_id""",
            [a.session_id for a in attendances], [a.staff_id for a in attendances],
            [a.completions for a in attendances], [a.waivers for a in attendances],
        )

    async def attendees_of(self, session_id: str) -> dict[int, list[str]]:
        """The people who met a session, by the fiscal year of their completion."""
        rows = await self.conn.fetch(
            """SELECT fiscal_year, staff_id FROM attendance
               WHERE session_id = $1 AND completions + waivers > 0 ORDER BY staff_id""",
            session_id,
        )
        attendees: dict[int, list[str]] = {}
        for row in rows:
            attendees.setdefault(row["fiscal_year"], []).append(row["staff_id"])
        return attendees

    # -- closing, late and unmatched

    async def lock_closure(self, fiscal_year: int) -> None:
        """A year's closing excludes its completions (which take the lock shared, `lock_for_completion`).

        Without it a completion committed concurrently with the closing is judged against a closing
        time it could not see yet, and the closing's recount misses the uncommitted completion.
        """
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('closure:' || $1, 0))", str(fiscal_year))

    async def close_fiscal_year(self, fiscal_year: int, closed_at: datetime) -> datetime:
        closed: datetime = await self.conn.fetchval(
            """INSERT INTO fiscal_year_closure (fiscal_year, closed_at) VALUES ($1, $2)
               ON CONFLICT (fiscal_year) DO UPDATE SET closed_at = LEAST(fiscal_year_closure.closed_at,
                 EXCLUDED.closed_at)
               RETURNING closed_at""",
            fiscal_year, closed_at,
        )
        return closed

    async def mark_late_completions(self, fiscal_year: int, closed_at: datetime) -> None:
        """Completions of the year recorded after it closed; an earlier closing time widens the set."""
        await self.conn.execute(
            """DELETE FROM late_completion WHERE fiscal_year = $1""", fiscal_year
        )
        await self.conn.execute(
            """INSERT INTO late_completion (record_id, session_id, staff_id, fiscal_year, recorded_at, closed_at)
               SELECT record_id, session_id, staff_id, fiscal_year, recorded_at, $2 FROM completion_record
               WHERE fiscal_year = $1 AND recorded_at > $2""",
            fiscal_year, closed_at,
        )

    async def add_late_completion(self, values: Mapping[str, Any], closed_at: datetime) -> None:
        await self.conn.execute(
            """INSERT INTO late_completion (record_id, session_id, staff_id, fiscal_year, recorded_at, closed_at)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            values["record_id"], values["session_id"], values["staff_id"], values["fiscal_year"],
            values["recorded_at"], closed_at,
        )

    async def resolve_unmatched(self, values: Mapping[str, Any]) -> None:
        await self.conn.execute(
            """INSERT INTO unmatched_resolution (unmatched_id, resolution, completion_id, resolved_at)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
            values["unmatched_id"], values["resolution"], values["completion_id"], values["resolved_at"],
        )

    async def add_unmatched(self, values: Mapping[str, Any]) -> None:
        await self.conn.execute(
            """INSERT INTO unmatched_statement (unmatched_id, reason, session_ref, staff_id, received_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            values["unmatched_id"], values["reason"], values["session_ref"], values["staff_id"],
            values["received_at"],
        )


# ---- report queries ----------------------------------------------------------------------------------


class ReportQueries:
    """What the reports read: tallies by key, and small per-person or per-year row sets."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def stage_year_tallies(self, first_year: int, last_year: int) -> list[StageYearTally]:
        rows = await self.conn.fetch(
            "SELECT * FROM plan_tally WHERE fiscal_year BETWEEN $1 AND $2", first_year, last_year
        )
        return [
            StageYearTally(r["fiscal_year"], r["stage"], r["entered"], r["new"], r["completed"]) for r in rows
        ]

    async def departments(self, fiscal_year: int) -> list[Department]:
        rows = await self.conn.fetch("SELECT * FROM department WHERE fiscal_year = $1", fiscal_year)
        return [Department(r["code"], r["name"], r["bureau"], r["active"], r["position"]) for r in rows]

    async def department_counts(self, fiscal_year: int) -> dict[tuple[str, Any], int]:
        rows = await self.conn.fetch("SELECT * FROM department_tally WHERE fiscal_year = $1", fiscal_year)
        counts: dict[tuple[str, Any], int] = {}
        for row in rows:
            for measure, column in (("recommended", "recommended"), ("self", "self_slot"),
                                    ("completions", "completions")):
                if row[column]:
                    counts[(row["department_code"], measure)] = row[column]
        return counts

    async def baseline_counts(self, fiscal_year: int) -> dict[tuple[str, Any], int]:
        rows = await self.conn.fetch("SELECT * FROM baseline_tally WHERE fiscal_year = $1", fiscal_year)
        counts: dict[tuple[str, Any], int] = {}
        for row in rows:
            for measure in ("staff", "staff_done", "managers", "managers_done"):
                if row[measure]:
                    counts[(row["department_code"], measure)] = row[measure]
        return counts

    async def trainee_years(self, staff_id: str) -> list[TraineeYear]:
        rows = await self.conn.fetch(
            "SELECT * FROM trainee_year WHERE staff_id = $1 ORDER BY fiscal_year", staff_id
        )
        return [_trainee_year(row) for row in rows]

    async def people_of_department(self, fiscal_year: int, department_code: str) -> list[str]:
        """Staff ids whose trainee-year of `fiscal_year` a department nominated or counts completions for."""
        rows = await self.conn.fetch(
            """SELECT staff_id FROM nomination WHERE fiscal_year = $1 AND department_code = $2
               UNION SELECT staff_id FROM trainee_year WHERE fiscal_year = $1 AND department_code = $2
               ORDER BY staff_id""",
            fiscal_year, department_code,
        )
        return [row["staff_id"] for row in rows]

    async def nominations_of_person(self, staff_id: str) -> list[Nomination]:
        rows = await self.conn.fetch(
            "SELECT * FROM nomination WHERE staff_id = $1 ORDER BY fiscal_year, nomination_id", staff_id
        )
        return [_nomination(row) for row in rows]

    async def roster_of_person(self, staff_id: str) -> list[Record]:
        return list(await self.conn.fetch(
            "SELECT * FROM baseline_person WHERE staff_id = $1 ORDER BY fiscal_year", staff_id
        ))

    async def curricula(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
        if not keys:
            return {}
        rows = await self.conn.fetch(
            """SELECT c.* FROM curriculum c
               JOIN unnest($1::int[], $2::int[]) AS k(fiscal_year, stage)
                 ON c.fiscal_year = k.fiscal_year AND c.stage = k.stage""",
            [k[0] for k in keys], [k[1] for k in keys],
        )
        return {(r["fiscal_year"], r["stage"]): list(r["session_ids"]) for r in rows}

    async def completion_records_of_person(self, staff_id: str) -> list[Record]:
        return list(await self.conn.fetch(
            """SELECT r.*, s.title, s.audience FROM completion_record r
               LEFT JOIN session s ON s.session_id = r.session_id
               WHERE r.staff_id = $1 ORDER BY r.fiscal_year, r.session_id, r.record_id""",
            staff_id,
        ))

    async def sessions(self, fiscal_year: int) -> list[Record]:
        return list(await self.conn.fetch(
            """SELECT s.*, coalesce(t.completions, 0) AS completions, coalesce(t.waived, 0) AS waived
               FROM session s LEFT JOIN session_tally t ON t.session_id = s.session_id
               WHERE s.fiscal_year = $1 ORDER BY s.starts_at NULLS LAST, s.session_id""",
            fiscal_year,
        ))

    async def curriculum_sessions_ever(self, fiscal_years: Sequence[int]) -> dict[int, set[str]]:
        """Every session any revision of a year's curricula (any stage) required, by fiscal year."""
        rows = await self.conn.fetch(
            "SELECT fiscal_year, all_session_ids FROM curriculum WHERE fiscal_year = ANY($1::int[])",
            list(fiscal_years),
        )
        sessions: dict[int, set[str]] = {}
        for row in rows:
            sessions.setdefault(row["fiscal_year"], set()).update(row["all_session_ids"])
        return sessions

    async def curricula_of_year(self, fiscal_year: int) -> dict[int, list[str]]:
        rows = await self.conn.fetch("SELECT * FROM curriculum WHERE fiscal_year = $1", fiscal_year)
        return {r["stage"]: list(r["session_ids"]) for r in rows}

    async def streams(self) -> list[Record]:
        return list(await self.conn.fetch(
            """SELECT routing_key, sum(events)::bigint AS events, max(last_event_time) AS last_event_time,
                      max(last_received_at) AS last_received_at
               FROM stream_health GROUP BY routing_key ORDER BY routing_key"""
        ))

    async def late_completions(self, limit: int = 10) -> tuple[int, list[Record]]:
        total = await self.conn.fetchval("SELECT count(*) FROM late_completion")
        rows = await self.conn.fetch(
            "SELECT * FROM late_completion ORDER BY recorded_at DESC, record_id LIMIT $1", limit
        )
        return total, list(rows)

    async def unmatched_statements(self, limit: int = 10) -> tuple[int, list[Record]]:
        unresolved = "NOT EXISTS (SELECT 1 FROM unmatched_resolution r WHERE r.unmatched_id = u.unmatched_id)"
        total = await self.conn.fetchval(f"SELECT count(*) FROM unmatched_statement u WHERE {unresolved}")
        rows = await self.conn.fetch(
            f"SELECT u.* FROM unmatched_statement u WHERE {unresolved}"
            " ORDER BY received_at DESC, unmatched_id LIMIT $1",
            limit,
        )
        return total, list(rows)

    async def fiscal_years(self) -> list[int]:
        rows = await self.conn.fetch(
            """SELECT DISTINCT fiscal_year FROM plan_tally
               UNION SELECT DISTINCT fiscal_year FROM department_tally
               UNION SELECT DISTINCT fiscal_year FROM baseline_tally ORDER BY 1"""
        )
        return [row["fiscal_year"] for row in rows]

    async def closed_years(self) -> dict[int, datetime]:
        rows = await self.conn.fetch("SELECT * FROM fiscal_year_closure")
        return {row["fiscal_year"]: row["closed_at"] for row in rows}

