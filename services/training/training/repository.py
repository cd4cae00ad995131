"""SQL for the training schema (asyncpg), on a connection whose transaction the caller owns.

Deduplication is done by the database: inserts of deliveries, reported results, completions and waivers
use `ON CONFLICT DO NOTHING` on their natural keys, so concurrent copies of the same fact wait for the
first one to commit and then find it there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dx_shared.contracts import Audience, CompletionSource, Method, MoveOn
from dx_shared.envelope import CloudEvent
from dx_shared.outbox import OutboxInsert
from training.domain import (
    Completion,
    CurriculumRevision,
    Outcome,
    ReportedResult,
    Session,
    UnmatchedEntry,
    UnmatchedReason,
    UnmatchedResult,
    Waiver,
)

_SESSION_COLUMNS = (
    "session_id, fiscal_year, method, audience, stage, title, starts_at, ends_at, capacity, move_on, xapi_activity_id"
)


_UNMATCHED_SELECT = (
    "SELECT u.unmatched_id, u.reason, u.received_at, u.resolution, r.source_key, r.source, r.session_ref,"
    " r.staff_id, r.occurred_at, r.completed, r.passed, r.success, r.score"
    " FROM unmatched_results u JOIN reported_results r USING (source_key)"
)


def _unmatched(row: asyncpg.Record) -> UnmatchedResult:
    return UnmatchedResult(
        unmatched_id=row["unmatched_id"],
        reason=UnmatchedReason(row["reason"]),
        reported=ReportedResult(
            source=CompletionSource(row["source"]),
            source_key=row["source_key"],
            session_ref=row["session_ref"],
            staff_id=row["staff_id"],
            occurred_at=row["occurred_at"],
            outcome=Outcome(completed=row["completed"], passed=row["passed"]),
            success=row["success"],
            score=row["score"],
        ),
        received_at=row["received_at"],
    )


def _session(row: asyncpg.Record) -> Session:
    return Session(
        session_id=row["session_id"],
        fiscal_year=row["fiscal_year"],
        method=Method(row["method"]),
        audience=Audience(row["audience"]),
        title=row["title"],
        move_on=MoveOn(row["move_on"]),
        stage=row["stage"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        capacity=row["capacity"],
        xapi_activity_id=row["xapi_activity_id"],
    )


@dataclass(frozen=True)
class ClaimedReport:
    """A delivery and its reported result, claimed; with the session named and the roster, if both are new."""

    delivery_claimed: bool
    report_claimed: bool
    session: Session | None
    on_roster: bool | None


@dataclass(frozen=True)
class SettledStatuses:
    """What to record a delivery as, by what adding its progress did; `meeting`: the outcomes that complete."""

    meeting: tuple[Outcome, ...]
    completed: str
    already_completed: str
    not_met: str


@dataclass(frozen=True)
class ProgressAdded:
    shown: Outcome
    status: str


@dataclass(frozen=True)
class ReportContext:
    """What deciding a report needs, read before anything is written."""

    seen: bool
    session: Session | None
    on_roster: bool | None


# Parameters $1-$17 (`_progress_to_settled_values`): adds what the report shows to the person's progress
# (row-locked), records the candidate completion when the sum meets the session, and says how to settle.
_PROGRESS_TO_SETTLED = (
    "WITH progress AS ("
    " INSERT INTO session_progress AS p (session_id, staff_id, fiscal_year, completed, passed)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (session_id, staff_id, fiscal_year) DO UPDATE"
    " SET completed = p.completed OR excluded.completed, passed = p.passed OR excluded.passed"
    " RETURNING completed, passed"
    "), met AS ("
    " SELECT FROM progress"
    " WHERE (completed, passed) IN (SELECT * FROM unnest($6::boolean[], $7::boolean[]))"
    "), completion AS ("
    " INSERT INTO completions (completion_id, session_id, staff_id, fiscal_year, method, occurred_at,"
    " recorded_at, source, success, score)"
    " SELECT $8, $1, $2, $3, $9, $10, $11, $12, $13, $14 FROM met"
    " ON CONFLICT DO NOTHING RETURNING true"
    "), settled AS ("
    " SELECT CASE WHEN EXISTS (SELECT FROM completion) THEN $15::text"
    " WHEN EXISTS (SELECT FROM met) THEN $16::text ELSE $17::text END AS status"
    ")"
)


def _progress_to_settled_values(
    reported: ReportedResult, candidate: Completion, statuses: SettledStatuses
) -> tuple[object, ...]:
    return (
        candidate.session_id,
        candidate.staff_id,
        candidate.fiscal_year,
        reported.outcome.completed,
        reported.outcome.passed,
        [outcome.completed for outcome in statuses.meeting],
        [outcome.passed for outcome in statuses.meeting],
        candidate.completion_id,
        candidate.method.value,
        candidate.occurred_at,
        candidate.recorded_at,
        candidate.source.value,
        candidate.success,
        candidate.score,
        statuses.completed,
        statuses.already_completed,
        statuses.not_met,
    )


class TrainingRepository:
    """The training service's tables, seen through one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    # ---- sessions -----------------------------------------------------------------------------

    async def add_session(self, session: Session) -> bool:
        inserted = await self._conn.fetchval(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (session_id) DO NOTHING RETURNING true",
            session.session_id,
            session.fiscal_year,
            session.method.value,
            session.audience.value,
            session.stage,
            session.title,
            session.starts_at,
            session.ends_at,
            session.capacity,
            session.move_on.value,
            session.xapi_activity_id,
        )
        return bool(inserted)

    async def session(self, session_id: str, *, for_update: bool = False) -> Session | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1{lock}", session_id
        )
        return _session(row) if row else None

    async def session_named_by(self, refs: Sequence[str]) -> Session | None:
        """The session an activity reference names: by its xAPI activity id first, else by session id."""
        row = await self._conn.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE xapi_activity_id = ANY($1::text[])"
            " OR session_id = ANY($1::text[])"
            " ORDER BY (xapi_activity_id = ANY($1::text[])) IS TRUE DESC LIMIT 1",
            list(refs),
        )
        return _session(row) if row else None

    async def sessions(self, fiscal_year: int | None) -> list[Session]:
        rows = await self._conn.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE $1::integer IS NULL OR fiscal_year = $1"
            " ORDER BY fiscal_year, starts_at NULLS LAST, session_id",
            fiscal_year,
        )
        return [_session(row) for row in rows]

    async def sessions_by_id(self, session_ids: Iterable[str]) -> dict[str, Session]:
        rows = await self._conn.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ANY($1::text[])", list(session_ids)
        )
        return {row["session_id"]: _session(row) for row in rows}

    # ---- curricula ----------------------------------------------------------------------------

    async def lock_curriculum(self, fiscal_year: int, stage: int) -> None:
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('training.curriculum'), $1)", fiscal_year * 10 + stage
        )

    async def curriculum_revisions(self, fiscal_year: int, stage: int) -> list[tuple[CurriculumRevision, datetime]]:
        rows = await self._conn.fetch(
            "SELECT fiscal_year, stage, revision, session_ids, published_at FROM curriculum_revisions"
            " WHERE fiscal_year = $1 AND stage = $2 ORDER BY revision",
            fiscal_year,
            stage,
        )
        return [
            (
                CurriculumRevision(row["fiscal_year"], row["stage"], row["revision"], tuple(row["session_ids"])),
                row["published_at"],
            )
            for row in rows
        ]

    async def add_curriculum_revision(self, revision: CurriculumRevision, published_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO curriculum_revisions (fiscal_year, stage, revision, session_ids, published_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            revision.fiscal_year,
            revision.stage,
            revision.revision,
            list(revision.session_ids),
            published_at,
        )

    # ---- webhook deliveries and reported results ----------------------------------------------
    #
    # A delivery takes three statements in one transaction (claim and look up; add what it shows and
    # settle; enqueue the event), because each round trip to the database costs more than the work
    # done in it. The claims come first: a concurrent copy of the same delivery or statement waits on
    # them for the first copy to commit and then finds it there.

    async def claim_delivery(self, webhook_id: str, received_at: datetime, status: str, digest: str) -> bool:
        """Records a delivery that carries no reported result (or a batch), already settled."""
        claimed = await self._conn.fetchval(
            "INSERT INTO webhook_deliveries (webhook_id, received_at, status, body_sha256) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (webhook_id) DO NOTHING RETURNING true",
            webhook_id,
            received_at,
            status,
            digest,
        )
        return bool(claimed)

    async def delivery_digest(self, webhook_id: str) -> str | None:
        """The digest of the body first received under this webhook-id (None: stored before digests)."""
        digest: str | None = await self._conn.fetchval(
            "SELECT body_sha256 FROM webhook_deliveries WHERE webhook_id = $1", webhook_id
        )
        return digest

    async def report_digest(self, source_key: str) -> str | None:
        """The digest of the reported result first received under this statement / completion id."""
        digest: str | None = await self._conn.fetchval(
            "SELECT payload_sha256 FROM reported_results WHERE source_key = $1", source_key
        )
        return digest

    async def claim_report(
        self,
        webhook_id: str,
        reported: ReportedResult,
        refs: Sequence[str],
        received_at: datetime,
        body: str,
        *,
        delivery_digest: str,
        payload_digest: str,
        delivery_claimed: bool = False,
    ) -> ClaimedReport:
        """Claims the delivery (unless `delivery_claimed`: one statement of a batch whose delivery was
        claimed), then its reported result, and reads the session it names and whether the person is on
        the year's roster — all in one statement; nothing is read unless both are new."""
        delivery = (
            "SELECT $1::text AS webhook_id, $2::timestamptz AS received_at, $15::text AS body_sha256"
            if delivery_claimed
            else "INSERT INTO webhook_deliveries (webhook_id, received_at, status, body_sha256)"
            " VALUES ($1, $2, 'received', $15) ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id"
        )
        row = await self._conn.fetchrow(
            f"WITH delivery AS ({delivery}"
            "), report AS ("
            " INSERT INTO reported_results (source_key, webhook_id, source, session_ref, staff_id, occurred_at,"
            " recorded_at, completed, passed, success, score, status, body, payload_sha256)"
            " SELECT $3, webhook_id, $4, $5, $6, $7, $2, $8, $9, $10, $11, 'received', $12, $16 FROM delivery"
            " ON CONFLICT (source_key) DO NOTHING RETURNING source_key"
            "), named AS ("
            f" SELECT {_SESSION_COLUMNS} FROM sessions"
            " WHERE EXISTS (SELECT FROM report) AND (xapi_activity_id = ANY($13::text[]) OR session_id = ANY($13::text[]))"
            " ORDER BY (xapi_activity_id = ANY($13::text[])) IS TRUE DESC LIMIT 1"
            ")"
            " SELECT EXISTS (SELECT FROM delivery) AS delivery_claimed, EXISTS (SELECT FROM report) AS report_claimed,"
            " (SELECT EXISTS (SELECT FROM roster_staff WHERE fiscal_year = $14 AND staff_id = $6)"
            "  FROM rosters WHERE fiscal_year = $14) AS on_roster,"
            " named.*"
            " FROM (VALUES (1)) AS one LEFT JOIN named ON true",
            webhook_id,
            received_at,
            reported.source_key,
            reported.source.value,
            reported.session_ref,
            reported.staff_id,
            reported.occurred_at,
            reported.outcome.completed,
            reported.outcome.passed,
            reported.success,
            reported.score,
            body,
            list(refs),
            reported.fiscal_year,
            delivery_digest,
            payload_digest,
        )
        assert row is not None
        return ClaimedReport(
            delivery_claimed=row["delivery_claimed"],
            report_claimed=row["report_claimed"],
            session=_session(row) if row["session_id"] is not None else None,
            on_roster=row["on_roster"],
        )

    async def settle_delivery(self, webhook_id: str, status: str, source_key: str | None) -> None:
        await self._conn.execute(
            "UPDATE webhook_deliveries SET status = $2, source_key = $3 WHERE webhook_id = $1",
            webhook_id,
            status,
            source_key,
        )

    async def add_progress_and_completion(
        self,
        webhook_id: str | None,
        reported: ReportedResult,
        candidate: Completion,
        statuses: SettledStatuses,
        completed_event: CloudEvent,
    ) -> ProgressAdded:
        """Adds what the report shows to what the person had shown (row-locked), records the candidate
        completion when the sum is one of `statuses.meeting`, settles the delivery and the report, and
        adds `completed_event` to the outbox when (and only when) the completion was recorded — one
        statement."""
        outboxed = OutboxInsert.of(completed_event, first=20)
        row = await self._conn.fetchrow(
            _PROGRESS_TO_SETTLED
            + ", delivery AS ("
            " UPDATE webhook_deliveries SET status = settled.status, source_key = $18 FROM settled"
            " WHERE webhook_id = $19"
            "), report AS ("
            " UPDATE reported_results SET status = settled.status FROM settled WHERE source_key = $18"
            "), "
            + outboxed.cte("EXISTS (SELECT FROM completion)")
            + " SELECT progress.completed, progress.passed, settled.status, "
            + OutboxInsert.selected
            + " FROM progress, settled",
            *_progress_to_settled_values(reported, candidate, statuses),
            reported.source_key,
            webhook_id,
            *outboxed.values,
        )
        assert row is not None
        outboxed.held(row["outbox_seq"], row["outbox_name"])
        return ProgressAdded(shown=Outcome(completed=row["completed"], passed=row["passed"]), status=row["status"])

    async def report_context(self, webhook_id: str, reported: ReportedResult, refs: Sequence[str]) -> ReportContext:
        """Whether the delivery or its reported result was received before, the session the report names
        and whether the person is on the year's roster — read only, one statement."""
        row = await self._conn.fetchrow(
            "SELECT EXISTS (SELECT FROM webhook_deliveries WHERE webhook_id = $1) AS delivery_seen,"
            " EXISTS (SELECT FROM reported_results WHERE source_key = $2) AS report_seen,"
            " (SELECT EXISTS (SELECT FROM roster_staff WHERE fiscal_year = $4 AND staff_id = $5)"
            "  FROM rosters WHERE fiscal_year = $4) AS on_roster,"
            " named.*"
            " FROM (VALUES (1)) AS one LEFT JOIN ("
            f" SELECT {_SESSION_COLUMNS} FROM sessions"
            " WHERE xapi_activity_id = ANY($3::text[]) OR session_id = ANY($3::text[])"
            " ORDER BY (xapi_activity_id = ANY($3::text[])) IS TRUE DESC LIMIT 1"
            ") AS named ON true",
            webhook_id,
            reported.source_key,
            list(refs),
            reported.fiscal_year,
            reported.staff_id,
        )
        assert row is not None
        return ReportContext(
            seen=row["delivery_seen"] or row["report_seen"],
            session=_session(row) if row["session_id"] is not None else None,
            on_roster=row["on_roster"],
        )

    async def record_report_at_once(
        self,
        webhook_id: str,
        reported: ReportedResult,
        candidate: Completion,
        statuses: SettledStatuses,
        *,
        received_at: datetime,
        body: str,
        digest: str,
        completed_event: CloudEvent,
    ) -> ProgressAdded:
        """A new delivery of a matched report, recorded by one statement (its own transaction): what
        `claim_report` and `add_progress_and_completion` do together, the delivery and the report
        inserted already settled. A delivery or report received meanwhile raises UniqueViolationError
        and nothing is recorded."""
        outboxed = OutboxInsert.of(completed_event, first=29)
        row = await self._conn.fetchrow(
            _PROGRESS_TO_SETTLED
            + ", delivery AS ("
            " INSERT INTO webhook_deliveries (webhook_id, received_at, status, body_sha256, source_key)"
            " SELECT $19, $20, settled.status, $21, $18 FROM settled"
            "), report AS ("
            " INSERT INTO reported_results (source_key, webhook_id, source, session_ref, staff_id, occurred_at,"
            " recorded_at, completed, passed, success, score, status, body, payload_sha256)"
            " SELECT $18, $19, $22, $23, $28, $24, $20, $4, $5, $25, $26, settled.status, $27, $21 FROM settled"
            "), "
            + outboxed.cte("EXISTS (SELECT FROM completion)")
            + " SELECT progress.completed, progress.passed, settled.status, "
            + OutboxInsert.selected
            + " FROM progress, settled",
            *_progress_to_settled_values(reported, candidate, statuses),
            reported.source_key,
            webhook_id,
            received_at,
            digest,
            reported.source.value,
            reported.session_ref,
            reported.occurred_at,
            reported.success,
            reported.score,
            body,
            reported.staff_id,
            *outboxed.values,
        )
        assert row is not None
        outboxed.held(row["outbox_seq"], row["outbox_name"])
        return ProgressAdded(shown=Outcome(completed=row["completed"], passed=row["passed"]), status=row["status"])

    async def add_unmatched(
        self,
        webhook_id: str | None,
        unmatched_id: str,
        reported: ReportedResult,
        reason: UnmatchedReason,
        received_at: datetime,
        status: str,
    ) -> bool:
        """Stores the reported result as unmatched and settles the delivery and the report; False when it
        was stored before."""
        inserted = await self._conn.fetchval(
            "WITH unmatched AS ("
            " INSERT INTO unmatched_results (unmatched_id, source_key, reason, source, session_ref, staff_id,"
            " occurred_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT DO NOTHING RETURNING true"
            "), delivery AS ("
            " UPDATE webhook_deliveries SET status = $9, source_key = $2 WHERE webhook_id = $10"
            "), report AS ("
            " UPDATE reported_results SET status = $9 WHERE source_key = $2"
            ")"
            " SELECT EXISTS (SELECT FROM unmatched)",
            unmatched_id,
            reported.source_key,
            reason.value,
            reported.source.value,
            reported.session_ref,
            reported.staff_id,
            reported.occurred_at,
            received_at,
            status,
            webhook_id,
        )
        return bool(inserted)

    async def unmatched(self, limit: int, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            "SELECT unmatched_id, reason, source, session_ref, staff_id, occurred_at, received_at,"
            " resolved_at IS NOT NULL AS resolved, resolved_at, resolution, completion_id,"
            " resolved_by, resolution_reason, matched_staff_id, matched_session_id"
            " FROM unmatched_results WHERE $2 OR resolved_at IS NULL"
            " ORDER BY received_at DESC, unmatched_id LIMIT $1",
            limit,
            include_resolved,
        )
        return [dict(row) for row in rows]

    async def lock_unresolved_naming(self, names: Sequence[str]) -> list[UnmatchedResult]:
        """Unresolved results whose activity reference contains one of `names`, row-locked, oldest first;
        the caller decides which of them really name the session."""
        return await self._lock_unresolved(
            "EXISTS (SELECT FROM unnest($1::text[]) AS name WHERE strpos(u.session_ref, name) > 0)", list(names)
        )

    async def lock_unresolved_of_staff(self, staff_ids: Sequence[str]) -> list[UnmatchedResult]:
        return await self._lock_unresolved("u.staff_id = ANY($1::text[])", list(staff_ids))

    async def _lock_unresolved(self, condition: str, argument: object) -> list[UnmatchedResult]:
        # Locked before the session and roster are read again (in later statements, which see what
        # committed meanwhile): a session and a roster arriving together cannot both miss the other.
        rows = await self._conn.fetch(
            f"{_UNMATCHED_SELECT} WHERE u.resolved_at IS NULL AND {condition}"
            " ORDER BY u.received_at, u.unmatched_id FOR UPDATE OF u",
            argument,
        )
        return [_unmatched(row) for row in rows]

    async def lock_unmatched(self, unmatched_id: str) -> UnmatchedEntry | None:
        """One unmatched report, open or resolved, locked for an office's decision on it."""
        row = await self._conn.fetchrow(
            f"{_UNMATCHED_SELECT} WHERE u.unmatched_id = $1 FOR UPDATE OF u", unmatched_id
        )
        return None if row is None else UnmatchedEntry(result=_unmatched(row), resolution=row["resolution"])

    async def resolve_by_office(
        self,
        unmatched_id: str,
        resolved_at: datetime,
        resolution: str,
        completion_id: str | None,
        *,
        actor: str,
        reason: str | None,
        staff_id: str | None,
        session_id: str | None,
    ) -> None:
        await self._conn.execute(
            "UPDATE unmatched_results SET resolved_at = $2, resolution = $3, completion_id = $4, resolved_by = $5,"
            " resolution_reason = $6, matched_staff_id = $7, matched_session_id = $8"
            " WHERE unmatched_id = $1 AND resolved_at IS NULL",
            unmatched_id,
            resolved_at,
            resolution,
            completion_id,
            actor,
            reason,
            staff_id,
            session_id,
        )

    async def resolve_unmatched(
        self, unmatched_id: str, resolved_at: datetime, resolution: str, completion_id: str | None
    ) -> None:
        await self._conn.execute(
            "UPDATE unmatched_results SET resolved_at = $2, resolution = $3, completion_id = $4"
            " WHERE unmatched_id = $1",
            unmatched_id,
            resolved_at,
            resolution,
            completion_id,
        )

    async def still_unmatched(self, unmatched_id: str, reason: str) -> None:
        await self._conn.execute(
            "UPDATE unmatched_results SET reason = $2 WHERE unmatched_id = $1", unmatched_id, reason
        )

    # ---- completions --------------------------------------------------------------------------

    async def add_completion(self, completion: Completion) -> bool:
        """False when this completion, or another of the same person, session and fiscal year, exists."""
        inserted = await self._conn.fetchval(
            "INSERT INTO completions (completion_id, session_id, staff_id, fiscal_year, method, occurred_at,"
            " recorded_at, source, success, score) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT DO NOTHING RETURNING true",
            completion.completion_id,
            completion.session_id,
            completion.staff_id,
            completion.fiscal_year,
            completion.method.value,
            completion.occurred_at,
            completion.recorded_at,
            completion.source.value,
            completion.success,
            completion.score,
        )
        return bool(inserted)

    async def attendees(self, session_id: str) -> frozenset[str]:
        rows = await self._conn.fetch(
            "SELECT staff_id FROM completions WHERE session_id = $1 AND source = 'attendance'", session_id
        )
        return frozenset(row["staff_id"] for row in rows)

    async def completions(
        self, *, fiscal_year: int | None, session_id: str | None, staff_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            "SELECT completion_id, session_id, staff_id, fiscal_year, method, occurred_at, recorded_at, source,"
            " success, score FROM completions"
            " WHERE ($1::integer IS NULL OR fiscal_year = $1) AND ($2::text IS NULL OR session_id = $2)"
            " AND ($3::text IS NULL OR staff_id = $3)"
            " ORDER BY occurred_at, completion_id LIMIT $4",
            fiscal_year,
            session_id,
            staff_id,
            limit,
        )
        return [dict(row) for row in rows]

    async def add_waiver(self, waiver: Waiver) -> bool:
        inserted = await self._conn.fetchval(
            "INSERT INTO waivers (waiver_id, session_id, staff_id, fiscal_year, actor, reason, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
            waiver.waiver_id,
            waiver.session_id,
            waiver.staff_id,
            waiver.fiscal_year,
            waiver.actor,
            waiver.reason,
            waiver.recorded_at,
        )
        return bool(inserted)

    async def waiver(self, session_id: str, staff_id: str, fiscal_year: int) -> Waiver | None:
        row = await self._conn.fetchrow(
            "SELECT waiver_id, session_id, staff_id, fiscal_year, actor, reason, recorded_at FROM waivers"
            " WHERE session_id = $1 AND staff_id = $2 AND fiscal_year = $3",
            session_id,
            staff_id,
            fiscal_year,
        )
        return Waiver(**dict(row)) if row else None

    # ---- known staff --------------------------------------------------------------------------

    async def on_roster(self, fiscal_year: int, staff_id: str) -> bool | None:
        """True/False when the year has a roster, None when none has been imported yet."""
        row = await self._conn.fetchrow(
            "SELECT EXISTS (SELECT 1 FROM roster_staff WHERE fiscal_year = $1 AND staff_id = $2) AS listed"
            " FROM rosters WHERE fiscal_year = $1",
            fiscal_year,
            staff_id,
        )
        return None if row is None else bool(row["listed"])

    async def not_on_roster(self, fiscal_year: int, staff_ids: Sequence[str]) -> frozenset[str]:
        if not await self._conn.fetchval("SELECT true FROM rosters WHERE fiscal_year = $1", fiscal_year):
            return frozenset()
        rows = await self._conn.fetch(
            "SELECT staff_id FROM roster_staff WHERE fiscal_year = $1 AND staff_id = ANY($2::text[])",
            fiscal_year,
            list(staff_ids),
        )
        return frozenset(staff_ids) - {row["staff_id"] for row in rows}

    async def apply_roster(self, fiscal_year: int, added: Sequence[str], removed: Sequence[str]) -> None:
        await self._conn.execute(
            "INSERT INTO rosters (fiscal_year) VALUES ($1) ON CONFLICT (fiscal_year) DO UPDATE SET updated_at = now()",
            fiscal_year,
        )
        if added:
            await self._conn.execute(
                "INSERT INTO roster_staff (fiscal_year, staff_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                fiscal_year,
                list(added),
            )
        if removed:
            await self._conn.execute(
                "DELETE FROM roster_staff WHERE fiscal_year = $1 AND staff_id = ANY($2::text[])",
                fiscal_year,
                list(removed),
            )
