"""The nomination service's tables, in SQL via asyncpg, on a connection inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from nomination.domain import (
    Department,
    ImportDiff,
    Nomination,
    NominationFacts,
    NominationRequest,
    NominationStatus,
    Slot,
    StaffMember,
)

ONE_RECOMMENDED_PER_DEPARTMENT = "nominations_one_recommended_per_department"
ONE_ACTIVE_PER_STAFF = "nominations_one_active_per_staff"

_NOMINATION_COLUMNS = (
    "n.nomination_id, n.fiscal_year, n.staff_id, n.department_code, n.slot, n.status,"
    " n.nominated_at, n.withdrawn_at, n.withdrawal_reason"
)
_VIEW_COLUMNS = f"{_NOMINATION_COLUMNS}, s.name AS staff_name, d.name AS department_name"
_VIEW_JOINS = (
    " LEFT JOIN staff s ON s.fiscal_year = n.fiscal_year AND s.staff_id = n.staff_id"
    " LEFT JOIN departments d ON d.fiscal_year = n.fiscal_year AND d.code = n.department_code"
)


@dataclass(frozen=True)
class NominationFilter:
    fiscal_year: int | None = None
    department_code: str | None = None
    slot: Slot | None = None
    status: NominationStatus | None = None
    staff_id: str | None = None


@dataclass(frozen=True)
class NominationView:
    """A nomination as people read it: with the nominee's name and the department's name of that year."""

    nomination: Nomination
    staff_name: str | None
    department_name: str | None


class Repository(Protocol):
    async def lock_list(self, list_name: str, fiscal_year: int) -> None: ...
    async def departments_of(self, fiscal_year: int) -> dict[str, Department]: ...
    async def staffed_department_codes(self, fiscal_year: int) -> set[str]: ...
    async def apply_department_diff(self, fiscal_year: int, diff: ImportDiff[Department]) -> None: ...
    async def roster_of(self, fiscal_year: int) -> dict[str, StaffMember]: ...
    async def apply_roster_diff(self, fiscal_year: int, diff: ImportDiff[StaffMember]) -> None: ...
    async def count_departments(self, fiscal_year: int) -> int: ...
    async def count_staff(self, fiscal_year: int) -> int: ...
    async def nomination_facts(self, request: NominationRequest) -> NominationFacts: ...
    async def add_nomination(self, nomination: Nomination) -> None: ...
    async def nomination_for_update(self, nomination_id: str) -> Nomination | None: ...
    async def save_withdrawal(self, nomination: Nomination) -> None: ...
    async def is_fiscal_year_closed(self, fiscal_year: int) -> bool: ...
    async def record_fiscal_year_closed(self, fiscal_year: int, closed_at: datetime, event_id: str) -> None: ...


class PostgresRepository:
    """`Repository` on one asyncpg connection; the caller owns the transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_list(self, list_name: str, fiscal_year: int) -> None:
        """Serialises imports of the same list for the same year (two offices uploading at once)."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1), $2)", f"nomination.{list_name}", fiscal_year
        )

    # ---- departments and roster ---------------------------------------------------------------

    async def departments_of(self, fiscal_year: int) -> dict[str, Department]:
        rows = await self._conn.fetch(
            "SELECT code, name, bureau, active, email FROM departments WHERE fiscal_year = $1", fiscal_year
        )
        return {row["code"]: _department(row) for row in rows}

    async def department(self, fiscal_year: int, code: str) -> Department | None:
        row = await self._conn.fetchrow(
            "SELECT code, name, bureau, active, email FROM departments WHERE fiscal_year = $1 AND code = $2",
            fiscal_year,
            code,
        )
        return _department(row) if row else None

    async def staffed_department_codes(self, fiscal_year: int) -> set[str]:
        rows = await self._conn.fetch("SELECT DISTINCT department_code FROM staff WHERE fiscal_year = $1", fiscal_year)
        return {row["department_code"] for row in rows}

    async def apply_department_diff(self, fiscal_year: int, diff: ImportDiff[Department]) -> None:
        await self._conn.copy_records_to_table(
            "departments",
            records=[(fiscal_year, d.code, d.name, d.bureau, d.active, d.email) for d in diff.added],
            columns=["fiscal_year", "code", "name", "bureau", "active", "email"],
        )
        await self._conn.executemany(
            "UPDATE departments SET name = $3, bureau = $4, active = $5, email = $6 WHERE fiscal_year = $1 AND code = $2",
            [(fiscal_year, c.after.code, c.after.name, c.after.bureau, c.after.active, c.after.email)
             for c in diff.changed],
        )
        await self._conn.execute(
            "DELETE FROM departments WHERE fiscal_year = $1 AND code = ANY($2::text[])", fiscal_year, list(diff.removed)
        )

    async def roster_of(self, fiscal_year: int) -> dict[str, StaffMember]:
        rows = await self._conn.fetch(
            "SELECT staff_id, name, department_code, is_manager, email FROM staff WHERE fiscal_year = $1", fiscal_year
        )
        return {row["staff_id"]: _staff_member(row) for row in rows}

    async def staff_of_department(self, fiscal_year: int, department_code: str) -> list[StaffMember]:
        rows = await self._conn.fetch(
            """SELECT staff_id, name, department_code, is_manager, email FROM staff
               WHERE fiscal_year = $1 AND department_code = $2 ORDER BY staff_id""",
            fiscal_year, department_code,
        )
        return [_staff_member(row) for row in rows]

    async def search_staff(self, fiscal_year: int, text: str, limit: int) -> list[StaffMember]:
        """A staff id starting with `text`, or a name containing it (spaces, half- or full-width, ignored)."""
        rows = await self._conn.fetch(
            """SELECT staff_id, name, department_code, is_manager, email FROM staff
               WHERE fiscal_year = $1
                 AND (left(staff_id, length($2)) = $2
                      OR strpos(translate(name, ' 　', ''), translate($2, ' 　', '')) > 0)
               ORDER BY staff_id LIMIT $3""",
            fiscal_year, text, limit,
        )
        return [_staff_member(row) for row in rows]

    async def apply_roster_diff(self, fiscal_year: int, diff: ImportDiff[StaffMember]) -> None:
        await self._conn.copy_records_to_table(
            "staff",
            records=[(fiscal_year, s.staff_id, s.name, s.department_code, s.is_manager, s.email) for s in diff.added],
            columns=["fiscal_year", "staff_id", "name", "department_code", "is_manager", "email"],
        )
        if diff.changed:
            await self._conn.execute(
                "UPDATE staff SET name = c.name, department_code = c.department_code, is_manager = c.is_manager,"
                " email = c.email"
                " FROM unnest($2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[])"
                "      AS c(staff_id, name, department_code, is_manager, email)"
                " WHERE staff.fiscal_year = $1 AND staff.staff_id = c.staff_id",
                fiscal_year,
                [c.after.staff_id for c in diff.changed],
                [c.after.name for c in diff.changed],
                [c.after.department_code for c in diff.changed],
                [c.after.is_manager for c in diff.changed],
                [c.after.email for c in diff.changed],
            )
        await self._conn.execute(
            "DELETE FROM staff WHERE fiscal_year = $1 AND staff_id = ANY($2::text[])", fiscal_year, list(diff.removed)
        )

    async def count_departments(self, fiscal_year: int) -> int:
        count: int = await self._conn.fetchval("SELECT count(*) FROM departments WHERE fiscal_year = $1", fiscal_year)
        return count

    async def count_staff(self, fiscal_year: int) -> int:
        count: int = await self._conn.fetchval("SELECT count(*) FROM staff WHERE fiscal_year = $1", fiscal_year)
        return count

    # ---- nominations --------------------------------------------------------------------------

    async def nomination_facts(self, request: NominationRequest) -> NominationFacts:
        fiscal_year = request.fiscal_year
        nominee_row = await self._conn.fetchrow(
            "SELECT staff_id, name, department_code, is_manager, email FROM staff"
            " WHERE fiscal_year = $1 AND staff_id = $2",
            fiscal_year,
            request.staff_id,
        )
        nominee = _staff_member(nominee_row) if nominee_row else None
        department_code = nominee.department_code if nominee else request.department_code
        department = await self.department(fiscal_year, department_code) if department_code else None
        # The person's active nomination and the department's recommended-slot holder in ONE statement, so
        # one snapshot: read apart, a nomination committed between the two reads showed the slot taken but
        # the person free, and an identical concurrent request was refused QUOTA_EXCEEDED where a
        # sequential one gets ALREADY_NOMINATED.
        rows = await self._conn.fetch(
            f"SELECT {_NOMINATION_COLUMNS} FROM nominations n WHERE n.fiscal_year = $1 AND n.status = 'active'"
            " AND (n.staff_id = $2 OR (n.department_code = $3 AND n.slot = 'recommended'))",
            fiscal_year,
            request.staff_id,
            department_code,
        )
        active = next((row for row in rows if row["staff_id"] == request.staff_id), None)
        holder = next(
            (row for row in rows if row["department_code"] == department_code and row["slot"] == "recommended"), None
        )
        years = await self._conn.fetch(
            "SELECT DISTINCT fiscal_year FROM nominations WHERE staff_id = $1 AND status = 'active'", request.staff_id
        )
        return NominationFacts(
            fiscal_year_closed=await self.is_fiscal_year_closed(fiscal_year),
            nominee=nominee,
            nominee_department=department,
            active_nomination=_nomination(active) if active else None,
            recommended_slot_holder=_nomination(holder) if holder else None,
            promoter_years=frozenset(row["fiscal_year"] for row in years),
        )

    async def add_nomination(self, nomination: Nomination) -> None:
        """Raises asyncpg.UniqueViolationError naming the N1 or N4 index when a concurrent request won."""
        await self._conn.execute(
            "INSERT INTO nominations (nomination_id, fiscal_year, staff_id, department_code, slot, status,"
            " nominated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            uuid.UUID(nomination.nomination_id),
            nomination.fiscal_year,
            nomination.staff_id,
            nomination.department_code,
            nomination.slot.value,
            nomination.status.value,
            nomination.nominated_at,
        )

    async def nomination_for_update(self, nomination_id: str) -> Nomination | None:
        row = await self._conn.fetchrow(
            f"SELECT {_NOMINATION_COLUMNS} FROM nominations n WHERE n.nomination_id = $1 FOR UPDATE",
            uuid.UUID(nomination_id),
        )
        return _nomination(row) if row else None

    async def save_withdrawal(self, nomination: Nomination) -> None:
        await self._conn.execute(
            "UPDATE nominations SET status = $2, withdrawn_at = $3, withdrawal_reason = $4 WHERE nomination_id = $1",
            uuid.UUID(nomination.nomination_id),
            nomination.status.value,
            nomination.withdrawn_at,
            nomination.withdrawal_reason,
        )

    async def is_fiscal_year_closed(self, fiscal_year: int) -> bool:
        closed: bool = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM closed_fiscal_years WHERE fiscal_year = $1)", fiscal_year
        )
        return closed

    async def record_fiscal_year_closed(self, fiscal_year: int, closed_at: datetime, event_id: str) -> None:
        await self._conn.execute(
            "INSERT INTO closed_fiscal_years (fiscal_year, closed_at, event_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (fiscal_year) DO NOTHING",
            fiscal_year,
            closed_at,
            event_id,
        )

    # ---- reading ------------------------------------------------------------------------------

    async def nomination_view(self, nomination_id: str) -> NominationView | None:
        row = await self._conn.fetchrow(
            f"SELECT {_VIEW_COLUMNS} FROM nominations n {_VIEW_JOINS} WHERE n.nomination_id = $1",
            uuid.UUID(nomination_id),
        )
        return _view(row) if row else None

    async def find_nominations(
        self, where: NominationFilter, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[NominationView], int]:
        conditions, arguments = _conditions(where)
        clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        total: int = await self._conn.fetchval(f"SELECT count(*) FROM nominations n{clause}", *arguments)
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        rows = await self._conn.fetch(
            f"SELECT {_VIEW_COLUMNS} FROM nominations n {_VIEW_JOINS}{clause}"
            f" ORDER BY n.fiscal_year, n.department_code, n.nominated_at, n.nomination_id{page}",
            *arguments,
        )
        return [_view(row) for row in rows], total


def _conditions(where: NominationFilter) -> tuple[list[str], list[Any]]:
    pairs: Iterable[tuple[str, Any]] = (
        ("n.fiscal_year", where.fiscal_year),
        ("n.department_code", where.department_code),
        ("n.slot", where.slot.value if where.slot else None),
        ("n.status", where.status.value if where.status else None),
        ("n.staff_id", where.staff_id),
    )
    conditions: list[str] = []
    arguments: list[Any] = []
    for column, value in pairs:
        if value is not None:
            arguments.append(value)
            conditions.append(f"{column} = ${len(arguments)}")
    return conditions, arguments


def _department(row: asyncpg.Record) -> Department:
    return Department(
        code=row["code"], name=row["name"], bureau=row["bureau"], active=row["active"], email=row["email"]
    )


def _staff_member(row: asyncpg.Record) -> StaffMember:
    return StaffMember(
        staff_id=row["staff_id"],
        name=row["name"],
        department_code=row["department_code"],
        is_manager=row["is_manager"],
        email=row["email"],
    )


def _nomination(row: asyncpg.Record) -> Nomination:
    return Nomination(
        nomination_id=str(row["nomination_id"]),
        staff_id=row["staff_id"],
        department_code=row["department_code"],
        fiscal_year=row["fiscal_year"],
        slot=Slot(row["slot"]),
        status=NominationStatus(row["status"]),
        nominated_at=row["nominated_at"],
        withdrawn_at=row["withdrawn_at"],
        withdrawal_reason=row["withdrawal_reason"],
    )


def _view(row: asyncpg.Record) -> NominationView:
    return NominationView(
        nomination=_nomination(row), staff_name=row["staff_name"], department_name=row["department_name"]
    )
