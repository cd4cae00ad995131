"""Who is asking (POLICY.md §5 各部門の役割), as stated by the gateway in front of the services.

The gateway authenticates people and sets `X-DX-Role` (and `X-DX-Department` for a department head,
`X-DX-Staff-Id` for a trainee); it must strip these headers from what clients send. A request without a
role comes from inside (another service, an operations job, the offices' own tools) and is treated as
the DX promotion office. Department heads see their own department's people only; trainees see their
own progress only; only the offices run the programme.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from dx_shared.problems import ProblemError
from dx_shared.roles import ROLE_LABELS, Caller, Role

ROLE_HEADER = "X-DX-Role"
DEPARTMENT_HEADER = "X-DX-Department"
STAFF_HEADER = "X-DX-Staff-Id"


def refused(caller: Caller, action_en: str, action_ja: str) -> ProblemError:
    return ProblemError(
        status=403,
        code="ROLE_NOT_PERMITTED",
        title_en=f"Your role ({caller.role.value}) may not {action_en}",
        title_ja=f"この操作（{action_ja}）は{ROLE_LABELS[caller.role]}の権限ではできません",
        role=caller.role.value,
    )


def require(caller: Caller, allowed: frozenset[Role], action_en: str, action_ja: str) -> None:
    if caller.role not in allowed:
        raise refused(caller, action_en, action_ja)


def caller_of(
    request: Request,
    role_header: Annotated[
        str | None,
        Header(alias=ROLE_HEADER, description="dx_office, hr_office, info_policy, department or trainee"),
    ] = None,
    department_header: Annotated[
        str | None, Header(alias=DEPARTMENT_HEADER, description="the department code, for role department")
    ] = None,
    staff_header: Annotated[
        str | None, Header(alias=STAFF_HEADER, description="the staff id, for role trainee")
    ] = None,
) -> Caller:
    stated = (role_header or "").strip().lower()
    if not stated:
        return _remembered(request, Caller(Role.DX_OFFICE))
    try:
        role = Role(stated)
    except ValueError as exc:
        raise ProblemError(
            status=400,
            code="UNKNOWN_ROLE",
            title_en=f"Unknown role {stated!r}",
            title_ja=f"不明な役割です（{stated}）",
            detail=f"{ROLE_HEADER} must be one of: " + ", ".join(role.value for role in Role),
        ) from exc
    department = (department_header or "").strip() or None
    staff_id = (staff_header or "").strip() or None
    if role is Role.DEPARTMENT and department is None:
        raise ProblemError(
            status=400,
            code="DEPARTMENT_REQUIRED",
            title_en=f"A department head's request must name the department ({DEPARTMENT_HEADER})",
            title_ja=f"所属の要求には所属コード（{DEPARTMENT_HEADER}）が必要です",
        )
    if role is Role.TRAINEE and staff_id is None:
        raise ProblemError(
            status=400,
            code="STAFF_ID_REQUIRED",
            title_en=f"A trainee's request must name the trainee ({STAFF_HEADER})",
            title_ja=f"研修受講者の要求には職員番号（{STAFF_HEADER}）が必要です",
        )
    return _remembered(request, Caller(role, department, staff_id))


def _remembered(request: Request, caller: Caller) -> Caller:
    # The audit trail (dx_shared.audit) reads who asked from here.
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(caller_of)]
