"""What each caller may see of a report (POLICY.md §5), as pure filters over the report documents.

The offices and the information-policy office see everything; a department head their own department's
rows (totals and bureau rates name nobody and stay whole); a trainee only their own progress; pipeline
health and dead letters only the offices and the information-policy office.
"""

from __future__ import annotations

from typing import Any

from dx_shared.roles import Caller, Role


def departments_seen_by(caller: Caller, report: dict[str, Any]) -> dict[str, Any] | None:
    """None: this caller may not see the department report at all."""
    if caller.sees_everything:
        return report
    if caller.role is not Role.DEPARTMENT:
        return None
    return {
        **report,
        "departments": [row for row in report["departments"] if caller.may_see_department(row["code"])],
        "missing_nomination": [row for row in report["missing_nomination"] if caller.may_see_department(row["code"])],
    }


def baseline_seen_by(caller: Caller, report: dict[str, Any]) -> dict[str, Any]:
    if caller.sees_everything:
        return report
    return {**report, "departments": [row for row in report["departments"] if caller.may_see_department(row["key"])]}


def sees_pipeline(caller: Caller) -> bool:
    return caller.sees_everything


def sees_programme_dashboard(caller: Caller) -> bool:
    """The programme-wide dashboard is for the offices and department heads; a trainee gets their own page."""
    return caller.role is not Role.TRAINEE
