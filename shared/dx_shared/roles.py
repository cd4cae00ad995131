"""Who is asking (POLICY.md §5 各部門の役割): the roles and what each may see (pure).

`dx_shared.access` reads them from the verified access token; domain modules use these values to decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    DX_OFFICE = "dx_office"  # DX推進担当部門: runs the programme, sees everything, closes fiscal years
    HR_OFFICE = "hr_office"  # 人財育成・人事担当部門: sessions, baseline, rosters; sees everything
    INFO_POLICY = "info_policy"  # 情報政策担当部門: runs the systems; sees everything, changes nothing
    DEPARTMENT = "department"  # 所属 head: nominates for the department, sees its own people
    TRAINEE = "trainee"  # 研修受講者: sees their own progress


class Scope(StrEnum):
    """OAuth 2.0 scopes: what a token lets its holder do at all; the role then decides for whom (§5)."""

    ROSTER_IMPORT = "dx.roster.import"
    NOMINATIONS_WRITE = "dx.nominations.write"
    NOMINATIONS_READ = "dx.nominations.read"
    TRAINING_WRITE = "dx.training.write"
    TRAINING_READ = "dx.training.read"
    FY_CLOSE = "dx.fy.close"
    PROGRESS_READ = "dx.progress.read"
    REPORTS_READ = "dx.reports.read"
    AUDIT_READ = "dx.audit.read"
    CONTACTS_READ = "dx.contacts.read"  # e-mail addresses for reminders (offices' programs only)
    OPS = "dx.ops"


OFFICES = frozenset({Role.DX_OFFICE, Role.HR_OFFICE})
SEES_EVERYTHING = frozenset({Role.DX_OFFICE, Role.HR_OFFICE, Role.INFO_POLICY})

ROLE_LABELS = {
    Role.DX_OFFICE: "DX推進担当部門",
    Role.HR_OFFICE: "人財育成・人事担当部門",
    Role.INFO_POLICY: "情報政策担当部門",
    Role.DEPARTMENT: "所属",
    Role.TRAINEE: "研修受講者",
}


@dataclass(frozen=True)
class Caller:
    role: Role
    department_code: str | None = None
    staff_id: str | None = None
    subject: str | None = None  # the token's `sub`: who acted, for the record (never a name)
    scopes: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None  # set for a program (client-credentials grant)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def sees_everything(self) -> bool:
        return self.role in SEES_EVERYTHING

    def may_see_department(self, department_code: str | None) -> bool:
        return self.sees_everything or (self.role is Role.DEPARTMENT and department_code == self.department_code)

    def may_see_person(self, staff_id: str, department_code: str | None = None) -> bool:
        if self.sees_everything:
            return True
        if self.role is Role.TRAINEE:
            return staff_id == self.staff_id
        return department_code is not None and department_code == self.department_code
