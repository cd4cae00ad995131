"""What the report pages decide by themselves (pure): the 'behind' marker a department head sees, how the
drill-down groups reporting's department rows by bureau, and which drill-down levels a role is offered.

POLICY.md has no rule for being behind: it is the portal's display rule only, and it decides nothing
(progression still judges completion at the fiscal year's end, P3/P6). A trainee is shown as behind
(遅れ気味) when they are still in training with required sessions open and fewer than
`BEHIND_WEEKS_LEFT` weeks remain before the fiscal year ends (1 April after it, JST)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dx_shared.calendar import fiscal_year_end
from dx_shared.roles import Caller, Role

# Eight weeks: about the time left for one more round of classroom or hands-on sessions before 31 March.
BEHIND_WEEKS_LEFT = 8


def time_left_in(fiscal_year: int, now: datetime) -> timedelta:
    return max(fiscal_year_end(fiscal_year) - now, timedelta(0))


def is_behind(status: str, required: int, done: int, fiscal_year: int, now: datetime,
              weeks: int = BEHIND_WEEKS_LEFT) -> bool:
    """In training, required sessions still open, and fewer than `weeks` weeks left in the fiscal year."""
    return status == "in_training" and done < required and time_left_in(fiscal_year, now) < timedelta(weeks=weeks)


@dataclass(frozen=True)
class BureauRow:
    """One bureau (部局) of the department report, its departments' figures added up."""

    bureau: str
    departments: int
    recommended_slot_used: int
    self_slot: int
    trainees: int
    completions: int


def bureaus_of(departments: Iterable[Mapping[str, Any]]) -> list[BureauRow]:
    """Reporting's department rows grouped by bureau, in the order the bureaus first appear."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in departments:
        grouped.setdefault(str(row["bureau"]), []).append(row)
    return [
        BureauRow(
            bureau=bureau, departments=len(rows),
            recommended_slot_used=sum(1 for r in rows if r["recommended_slot_used"]),
            self_slot=sum(int(r["self_slot"]) for r in rows), trainees=sum(int(r["trainees"]) for r in rows),
            completions=sum(int(r["completions"]) for r in rows),
        )
        for bureau, rows in grouped.items()
    ]


def offers_search(caller: Caller) -> bool:
    """Finding a person by staff id or name is for the offices (nomination refuses everyone else)."""
    return caller.role in (Role.DX_OFFICE, Role.HR_OFFICE)


def reports_home(caller: Caller) -> str | None:
    """Where a role's drill-down starts when it cannot see the bureau list: a trainee at their own page."""
    if caller.role is Role.TRAINEE:
        return f"/reports/people/{caller.staff_id}" if caller.staff_id else None
    return "/reports"
