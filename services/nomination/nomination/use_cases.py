"""What the nomination service does, called by the HTTP API and the event handlers alike.

Each use case is load → decide (domain) → save the effect and its event (outbox) in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import asyncpg

from dx_shared import contracts as c
from dx_shared.envelope import new_event
from dx_shared.logging import get_logger
from dx_shared.outbox import enqueue
from dx_shared.roles import Caller
from nomination import domain
from nomination.csv_import import (
    NominationLine,
    ParsedFile,
    RowProblem,
    parse_departments,
    parse_nomination_sheet,
    parse_roster,
)
from nomination.domain import (
    Department,
    ImportDiff,
    Nomination,
    NominationRefused,
    NominationRequest,
    StaffMember,
    diff_import,
)
from nomination.repository import ONE_ACTIVE_PER_STAFF, ONE_RECOMMENDED_PER_DEPARTMENT, PostgresRepository

log = get_logger(__name__)

DEPARTMENTS = "departments"
STAFF = "staff"


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did: the office's answer to "what changed?" and "what is wrong?"."""

    list_name: str
    fiscal_year: int
    dry_run: bool
    encoding: str
    rows: int
    added: tuple[str, ...] = ()
    changed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()
    total: int = 0
    ignored_columns: tuple[str, ...] = ()
    bad_rows: tuple[RowProblem, ...] = ()
    event_id: str | None = None

    @property
    def applied(self) -> bool:
        return self.event_id is not None

    @property
    def rejected(self) -> bool:
        return bool(self.bad_rows)


@dataclass(frozen=True)
class SheetRowResult:
    line: int
    staff_id: str
    slot: str | None
    department_code: str | None
    nomination: Nomination | None = None
    refusal_code: str | None = None
    message_ja: str | None = None
    message_en: str | None = None


@dataclass(frozen=True)
class SheetReport:
    fiscal_year: int
    dry_run: bool
    encoding: str
    results: tuple[SheetRowResult, ...] = ()
    file_problems: tuple[RowProblem, ...] = field(default=())


# ---- importing the department list and the roster ---------------------------------------------


async def import_departments(pool: asyncpg.Pool, fiscal_year: int, raw: bytes, *, dry_run: bool) -> ImportReport:
    """所属一覧の取込み: all-or-nothing; the same file again changes nothing and emits nothing."""
    parsed = parse_departments(raw)
    async with pool.acquire() as conn, conn.transaction():
        repo = PostgresRepository(conn)
        await repo.lock_list(DEPARTMENTS, fiscal_year)
        diff = diff_import(await repo.departments_of(fiscal_year), _keyed_departments(parsed))
        problems = parsed.problems + _removed_departments_in_use(diff, await repo.staffed_department_codes(fiscal_year))
        if problems or dry_run or not diff.changes_anything:
            return _report(DEPARTMENTS, fiscal_year, parsed, diff, dry_run, problems, total=len(parsed.rows))
        await repo.apply_department_diff(fiscal_year, diff)
        total = await repo.count_departments(fiscal_year)
        event = new_event(
            c.DepartmentsImported(
                fiscal_year=fiscal_year,
                departments=[_department_entry(row) for row in diff.added_or_changed],
                removed_codes=list(diff.removed),
                total=total,
                order=[row.code for _, row in parsed.rows],
            )
        )
        await enqueue(conn, event)
    log.info("departments_imported", fiscal_year=fiscal_year, added=len(diff.added), changed=len(diff.changed))
    return _report(DEPARTMENTS, fiscal_year, parsed, diff, dry_run, (), total=total, event_id=event.id)


async def import_staff(pool: asyncpg.Pool, fiscal_year: int, raw: bytes, *, dry_run: bool) -> ImportReport:
    """職員名簿の取込み: all-or-nothing and idempotent; the event carries no names."""
    async with pool.acquire() as conn, conn.transaction():
        repo = PostgresRepository(conn)
        await repo.lock_list(STAFF, fiscal_year)
        parsed = parse_roster(raw, set(await repo.departments_of(fiscal_year)))
        diff = diff_import(await repo.roster_of(fiscal_year), _keyed_staff(parsed))
        if parsed.problems or dry_run or not diff.changes_anything:
            return _report(STAFF, fiscal_year, parsed, diff, dry_run, parsed.problems, total=len(parsed.rows))
        await repo.apply_roster_diff(fiscal_year, diff)
        total = await repo.count_staff(fiscal_year)
        event = new_event(
            c.StaffImported(
                fiscal_year=fiscal_year,
                staff=[_staff_entry(row) for row in diff.added_or_changed],
                removed_staff_ids=list(diff.removed),
                total=total,
            )
        )
        await enqueue(conn, event)
    log.info("staff_imported", fiscal_year=fiscal_year, added=len(diff.added), changed=len(diff.changed))
    return _report(STAFF, fiscal_year, parsed, diff, dry_run, (), total=total, event_id=event.id)


def _keyed_departments(parsed: ParsedFile[Department]) -> dict[str, Department]:
    return {row.code: row for _, row in parsed.rows}


def _keyed_staff(parsed: ParsedFile[StaffMember]) -> dict[str, StaffMember]:
    return {row.staff_id: row for _, row in parsed.rows}


def _removed_departments_in_use(diff: ImportDiff[Department], staffed: set[str]) -> tuple[RowProblem, ...]:
    in_use = [code for code in diff.removed if code in staffed]
    if not in_use:
        return ()
    codes = ", ".join(in_use)
    return (
        RowProblem(
            line=None,
            code="DEPARTMENT_IN_USE",
            message_ja=f"職員名簿で使われている所属がファイルにありません: {codes}（先に職員名簿を更新してください）",
            message_en=f"Departments still on this year's roster are missing from the file: {codes} "
            "(import the updated roster first).",
        ),
    )


def _department_entry(department: Department) -> c.DepartmentEntry:
    return c.DepartmentEntry(
        code=department.code, name=department.name, bureau=department.bureau, active=department.active
    )


def _staff_entry(member: StaffMember) -> c.StaffEntry:
    return c.StaffEntry(staff_id=member.staff_id, department_code=member.department_code, is_manager=member.is_manager)


def _key(row: Department | StaffMember) -> str:
    return row.code if isinstance(row, Department) else row.staff_id


def _report(
    list_name: str,
    fiscal_year: int,
    parsed: ParsedFile[Department] | ParsedFile[StaffMember],
    diff: ImportDiff[Department] | ImportDiff[StaffMember],
    dry_run: bool,
    problems: Sequence[RowProblem],
    *,
    total: int,
    event_id: str | None = None,
) -> ImportReport:
    return ImportReport(
        list_name=list_name,
        fiscal_year=fiscal_year,
        dry_run=dry_run,
        encoding=parsed.encoding,
        rows=len(parsed.rows) + sum(1 for problem in problems if problem.line is not None),
        added=tuple(_key(row) for row in diff.added),
        changed=tuple((_key(change.after), change.changed_fields) for change in diff.changed),
        unchanged=diff.unchanged,
        removed=diff.removed,
        total=total,
        ignored_columns=parsed.ignored_columns,
        bad_rows=tuple(problems),
        event_id=event_id,
    )


# ---- nominating and withdrawing ---------------------------------------------------------------


async def nominate(pool: asyncpg.Pool, request: NominationRequest) -> Nomination:
    """推薦・自薦: accepted and announced (TraineeNominated), or refused with nothing recorded."""
    async with pool.acquire() as conn, conn.transaction():
        return await nominate_on(conn, request)


async def nominate_on(conn: asyncpg.Connection, request: NominationRequest) -> Nomination:
    repo = PostgresRepository(conn)
    facts = await repo.nomination_facts(request)
    nomination = domain.nominate(request, facts, nomination_id=str(uuid.uuid4()), at=datetime.now(UTC))
    try:
        async with conn.transaction():  # a savepoint: a lost race leaves the transaction usable
            await repo.add_nomination(nomination)
    except asyncpg.UniqueViolationError as exc:
        raise await _refusal_after_race(repo, request, exc, nomination) from exc
    await enqueue(
        conn,
        new_event(
            c.TraineeNominated(
                nomination_id=nomination.nomination_id,
                staff_id=nomination.staff_id,
                department_code=nomination.department_code,
                fiscal_year=nomination.fiscal_year,
                slot=c.Slot(nomination.slot.value),
                nominated_at=nomination.nominated_at,
            ),
            subject=nomination.staff_id,
        ),
    )
    return nomination


async def _refusal_after_race(
    repo: PostgresRepository, request: NominationRequest, exc: asyncpg.UniqueViolationError, nomination: Nomination
) -> NominationRefused:
    """A concurrent request won between our read and our insert: the refusal is the one a sequential
    retry would get, whichever unique index happened to fire first. The insert waited for the winner
    to commit, so the facts read again now (a new statement snapshot, READ COMMITTED) include it."""
    fresh = await repo.nomination_facts(request)
    try:
        domain.nominate(request, fresh, nomination_id=nomination.nomination_id, at=nomination.nominated_at)
    except NominationRefused as refusal:
        return refusal
    return _refusal_for_race(exc, nomination)


def _refusal_for_race(exc: asyncpg.UniqueViolationError, nomination: Nomination) -> NominationRefused:
    """A concurrent request took the slot or the person between our read and our insert."""
    if exc.constraint_name == ONE_RECOMMENDED_PER_DEPARTMENT:
        return domain.quota_exceeded(nomination.department_code, nomination.fiscal_year)
    if exc.constraint_name == ONE_ACTIVE_PER_STAFF:
        return domain.already_nominated(nomination.staff_id, nomination.fiscal_year)
    raise exc


async def withdraw(pool: asyncpg.Pool, nomination_id: str, reason: str, caller: Caller) -> Nomination:
    """取下げ: frees the slot and announces it (NominationWithdrawn); a second withdrawal is refused."""
    async with pool.acquire() as conn, conn.transaction():
        repo = PostgresRepository(conn)
        found = await repo.nomination_for_update(nomination_id)
        if found is None:
            raise domain.nomination_not_found(nomination_id)
        domain.check_may_withdraw(caller, found)
        withdrawn = domain.withdraw(
            found,
            reason=reason,
            at=datetime.now(UTC),
            fiscal_year_closed=await repo.is_fiscal_year_closed(found.fiscal_year),
        )
        await repo.save_withdrawal(withdrawn)
        await enqueue(
            conn,
            new_event(
                c.NominationWithdrawn(
                    nomination_id=withdrawn.nomination_id,
                    staff_id=withdrawn.staff_id,
                    fiscal_year=withdrawn.fiscal_year,
                    reason=reason,
                    department_code=withdrawn.department_code,
                    slot=c.Slot(withdrawn.slot.value),
                    withdrawn_at=withdrawn.withdrawn_at,
                ),
                subject=withdrawn.staff_id,
            ),
        )
    return withdrawn


async def import_nomination_sheet(pool: asyncpg.Pool, fiscal_year: int, raw: bytes, *, dry_run: bool) -> SheetReport:
    """推薦・自薦一覧の取込み: each row judged by the same rules, in file order; refused rows record nothing."""
    parsed = parse_nomination_sheet(raw)
    if parsed.problems:
        return SheetReport(fiscal_year=fiscal_year, dry_run=dry_run, encoding="", file_problems=parsed.problems)
    results: list[SheetRowResult] = []
    async with pool.acquire() as conn:
        outer = conn.transaction()
        await outer.start()
        try:
            for _, line in parsed.rows:
                results.append(await _judge_sheet_row(conn, fiscal_year, line))
        except BaseException:
            await outer.rollback()
            raise
        if dry_run:
            await outer.rollback()
        else:
            await outer.commit()
    return SheetReport(fiscal_year=fiscal_year, dry_run=dry_run, encoding=parsed.encoding, results=tuple(results))


async def _judge_sheet_row(conn: asyncpg.Connection, fiscal_year: int, line: NominationLine) -> SheetRowResult:
    row = SheetRowResult(
        line=line.line,
        staff_id=line.staff_id,
        slot=line.slot.value if line.slot else None,
        department_code=line.department_code,
    )
    if line.problem is not None or line.slot is None:
        problem = line.problem
        return replace(
            row,
            refusal_code=problem.code if problem else "BAD_SLOT",
            message_ja=problem.message_ja if problem else None,
            message_en=problem.message_en if problem else None,
        )
    request = NominationRequest(
        staff_id=line.staff_id, fiscal_year=fiscal_year, slot=line.slot, department_code=line.department_code
    )
    try:
        async with conn.transaction():
            nomination = await nominate_on(conn, request)
    except NominationRefused as refusal:
        return replace(row, refusal_code=refusal.code, message_ja=refusal.detail_ja, message_en=refusal.detail_en)
    return replace(row, department_code=nomination.department_code, nomination=nomination)


# ---- events from other services ---------------------------------------------------------------


async def record_fiscal_year_closed(
    conn: asyncpg.Connection, fiscal_year: int, closed_at: datetime, event_id: str
) -> None:
    """FiscalYearClosed (P6): from now on nominations for that year are refused (N6)."""
    await PostgresRepository(conn).record_fiscal_year_closed(fiscal_year, closed_at, event_id)
