"""POLICY.md §4 N1–N6 and withdrawal, as pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from nomination.domain import (
    REFUSALS,
    AlreadyNominated,
    AlreadyWithdrawn,
    Department,
    DepartmentInactive,
    FiscalYearClosed,
    Nomination,
    NominationFacts,
    NominationRequest,
    NominationStatus,
    NotNew,
    NotOwnDepartment,
    QuotaExceeded,
    Slot,
    StaffMember,
    UnknownDepartment,
    UnknownStaff,
    nominate,
    withdraw,
)

AT = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
FY = 2024
SOUMU = Department(code="D001", name="総務課", bureau="総務部")
AOMORI = StaffMember(staff_id="S0001", name="青森 太郎", department_code="D001")


def active_nomination(staff_id: str = "S0002", slot: Slot = Slot.RECOMMENDED, fiscal_year: int = FY) -> Nomination:
    return Nomination(
        nomination_id="n-existing",
        staff_id=staff_id,
        department_code="D001",
        fiscal_year=fiscal_year,
        slot=slot,
        status=NominationStatus.ACTIVE,
        nominated_at=AT,
    )


def facts(**overrides: object) -> NominationFacts:
    base = NominationFacts(
        fiscal_year_closed=False,
        nominee=AOMORI,
        nominee_department=SOUMU,
        active_nomination=None,
        recommended_slot_holder=None,
        promoter_years=frozenset(),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def request(slot: Slot = Slot.RECOMMENDED, **overrides: object) -> NominationRequest:
    base = NominationRequest(staff_id="S0001", fiscal_year=FY, slot=slot, department_code="D001")
    return replace(base, **overrides)  # type: ignore[arg-type]


def accept(req: NominationRequest, found: NominationFacts) -> Nomination:
    return nominate(req, found, nomination_id="n-new", at=AT)


def test_a_new_staff_member_is_accepted_for_the_recommended_slot_of_their_department() -> None:
    nomination = accept(request(), facts())

    assert nomination.staff_id == "S0001"
    assert nomination.department_code == "D001"
    assert nomination.slot is Slot.RECOMMENDED
    assert nomination.status is NominationStatus.ACTIVE
    assert nomination.fiscal_year == FY


def test_n1_second_recommended_nomination_in_a_department_is_refused() -> None:
    with pytest.raises(QuotaExceeded) as refused:
        accept(request(), facts(recommended_slot_holder=active_nomination()))

    assert refused.value.code == "QUOTA_EXCEEDED"


def test_n1_a_withdrawn_recommended_nomination_frees_the_slot() -> None:
    withdrawn = withdraw(active_nomination(), reason="異動のため", at=AT)

    nomination = accept(request(), facts(recommended_slot_holder=withdrawn))

    assert nomination.is_active


def test_n1_the_self_slot_is_not_limited_per_department() -> None:
    nomination = accept(request(Slot.SELF), facts(recommended_slot_holder=active_nomination()))

    assert nomination.slot is Slot.SELF


def test_n2_a_former_dx_promoter_is_refused_for_the_recommended_slot() -> None:
    with pytest.raises(NotNew) as refused:
        accept(request(), facts(promoter_years=frozenset({2023})))

    assert refused.value.code == "NOT_NEW"


def test_n2_a_nomination_only_in_a_later_year_does_not_make_the_nominee_former() -> None:
    nomination = accept(request(), facts(promoter_years=frozenset({2025})))

    assert nomination.slot is Slot.RECOMMENDED


def test_n2_withdrawn_earlier_nominations_do_not_count_because_they_are_not_promoter_years() -> None:
    # The repository lists only years with a nomination that was not withdrawn.
    nomination = accept(request(), facts(promoter_years=frozenset()))

    assert nomination.is_active


def test_n3_the_self_slot_accepts_a_new_volunteer() -> None:
    assert accept(request(Slot.SELF), facts()).slot is Slot.SELF


def test_n3_n5_a_continuing_promoter_is_accepted_through_the_self_slot() -> None:
    nomination = accept(request(Slot.SELF), facts(promoter_years=frozenset({2022, 2023})))

    assert nomination.slot is Slot.SELF


def test_n5_a_continuing_promoter_cannot_continue_through_the_recommended_slot() -> None:
    with pytest.raises(NotNew):
        accept(request(Slot.RECOMMENDED), facts(promoter_years=frozenset({2023})))


@pytest.mark.parametrize("slot", list(Slot))
def test_n4_a_second_active_nomination_of_a_person_in_a_year_is_refused(slot: Slot) -> None:
    held = active_nomination(staff_id="S0001", slot=Slot.SELF)

    with pytest.raises(AlreadyNominated) as refused:
        accept(request(slot), facts(active_nomination=held))

    assert refused.value.code == "ALREADY_NOMINATED"


def test_n6_a_nominee_not_on_the_years_roster_is_refused() -> None:
    with pytest.raises(UnknownStaff) as refused:
        accept(request(), facts(nominee=None, nominee_department=None))

    assert refused.value.code == "UNKNOWN_STAFF"


def test_n6_a_nominee_whose_department_is_not_in_the_years_list_is_refused() -> None:
    with pytest.raises(UnknownDepartment) as refused:
        accept(request(), facts(nominee_department=None))

    assert refused.value.code == "UNKNOWN_DEPARTMENT"


@pytest.mark.parametrize("slot", list(Slot))
def test_n6_a_nominee_in_an_inactive_department_is_refused(slot: Slot) -> None:
    with pytest.raises(DepartmentInactive) as refused:
        accept(request(slot), facts(nominee_department=replace(SOUMU, active=False)))

    assert refused.value.code == "DEPARTMENT_INACTIVE"


def test_n6_a_department_cannot_recommend_another_departments_staff() -> None:
    with pytest.raises(NotOwnDepartment) as refused:
        accept(request(department_code="D999"), facts())

    assert refused.value.code == "NOT_OWN_DEPARTMENT"


def test_n6_without_a_nominating_department_the_nominees_own_department_is_used() -> None:
    nomination = accept(request(Slot.SELF, department_code=None), facts())

    assert nomination.department_code == "D001"


def test_n6_nominations_for_a_closed_fiscal_year_are_refused() -> None:
    with pytest.raises(FiscalYearClosed) as refused:
        accept(request(Slot.SELF), facts(fiscal_year_closed=True))

    assert refused.value.code == "FISCAL_YEAR_CLOSED"


def test_a_closed_year_is_refused_before_anything_else_is_judged() -> None:
    with pytest.raises(FiscalYearClosed):
        accept(
            request(),
            facts(fiscal_year_closed=True, nominee=None, recommended_slot_holder=active_nomination()),
        )


def test_withdrawal_records_the_reason_and_the_time() -> None:
    withdrawn = withdraw(active_nomination(), reason="本人の希望", at=AT)

    assert withdrawn.status is NominationStatus.WITHDRAWN
    assert withdrawn.withdrawal_reason == "本人の希望"
    assert withdrawn.withdrawn_at == AT
    assert not withdrawn.is_active


def test_withdrawing_twice_is_refused() -> None:
    withdrawn = withdraw(active_nomination(), reason="本人の希望", at=AT)

    with pytest.raises(AlreadyWithdrawn) as refused:
        withdraw(withdrawn, reason="again", at=AT)

    assert refused.value.code == "ALREADY_WITHDRAWN"


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda refusal: refusal.code)
def test_every_refusal_has_a_distinct_code_and_a_japanese_and_english_title(refusal: type) -> None:
    assert refusal.code.isupper()
    assert refusal.title_ja and refusal.title_en
    assert any("\u3040" <= char <= "\u9fff" for char in refusal.title_ja)
    assert len({other.code for other in REFUSALS}) == len(REFUSALS)


def test_a_refusal_explains_itself_in_japanese_and_english() -> None:
    with pytest.raises(QuotaExceeded) as refused:
        accept(request(), facts(recommended_slot_holder=active_nomination()))

    assert "D001" in refused.value.detail_ja and "推薦枠" in refused.value.detail_ja
    assert "D001" in refused.value.detail_en and "recommended slot" in refused.value.detail_en


def test_a_nomination_of_a_closed_fiscal_year_can_no_longer_be_withdrawn() -> None:
    with pytest.raises(FiscalYearClosed):
        withdraw(active_nomination(), reason="本人の希望", at=AT, fiscal_year_closed=True)
