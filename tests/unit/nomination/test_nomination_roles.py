"""Who may nominate and withdraw (POLICY.md §5): offices anyone, a department its own, a trainee only themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dx_shared.roles import Caller, Role
from nomination.domain import (
    Nomination,
    NominationRequest,
    NominationStatus,
    RoleNotPermitted,
    Slot,
    as_requested_by,
    check_may_nominate,
    check_may_withdraw,
)

OFFICE = Caller(Role.DX_OFFICE)
HR = Caller(Role.HR_OFFICE)
HEAD_0101 = Caller(Role.DEPARTMENT, department_code="0101")
TRAINEE = Caller(Role.TRAINEE, staff_id="001001")
SYSTEMS = Caller(Role.INFO_POLICY)


def request(
    staff_id: str = "001001", slot: Slot = Slot.RECOMMENDED, department: str | None = "0101"
) -> NominationRequest:
    return NominationRequest(staff_id=staff_id, fiscal_year=2024, slot=slot, department_code=department)


def nomination(staff_id: str = "001001", slot: Slot = Slot.SELF, department: str = "0101") -> Nomination:
    return Nomination("n1", staff_id, department, 2024, slot, NominationStatus.ACTIVE, datetime.now(UTC))


@pytest.mark.parametrize("caller", [OFFICE, HR])
def test_the_offices_may_nominate_anyone_in_either_slot(caller: Caller) -> None:
    check_may_nominate(caller, request(department="0201"))
    check_may_nominate(caller, request(slot=Slot.SELF, department=None))


def test_a_department_head_nominates_for_their_own_department_which_is_the_default() -> None:
    defaulted = as_requested_by(HEAD_0101, request(department=None))
    assert defaulted.department_code == "0101"
    check_may_nominate(HEAD_0101, defaulted)


def test_a_department_head_may_not_nominate_for_another_department() -> None:
    with pytest.raises(RoleNotPermitted):
        check_may_nominate(HEAD_0101, request(department="0201"))


def test_a_trainee_may_apply_only_for_themselves_and_only_in_the_self_slot() -> None:
    check_may_nominate(TRAINEE, request(slot=Slot.SELF, department=None))
    with pytest.raises(RoleNotPermitted):
        check_may_nominate(TRAINEE, request(staff_id="001002", slot=Slot.SELF))
    with pytest.raises(RoleNotPermitted):
        check_may_nominate(TRAINEE, request(slot=Slot.RECOMMENDED))


def test_the_information_policy_office_runs_the_systems_but_does_not_nominate() -> None:
    with pytest.raises(RoleNotPermitted):
        check_may_nominate(SYSTEMS, request())


def test_withdrawal_follows_the_same_lines() -> None:
    check_may_withdraw(OFFICE, nomination(department="0201"))
    check_may_withdraw(HEAD_0101, nomination(department="0101"))
    check_may_withdraw(TRAINEE, nomination())
    with pytest.raises(RoleNotPermitted):
        check_may_withdraw(HEAD_0101, nomination(department="0201"))
    with pytest.raises(RoleNotPermitted):
        check_may_withdraw(TRAINEE, nomination(slot=Slot.RECOMMENDED))
    with pytest.raises(RoleNotPermitted):
        check_may_withdraw(TRAINEE, nomination(staff_id="001002"))
