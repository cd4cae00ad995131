"""Sessions (P2 methods and audiences) and curricula, including changes during the year."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from dx_shared.calendar import JST
from dx_shared.contracts import Audience, Method, MoveOn
from training.domain import (
    CurriculumRevision,
    CurriculumSessionMismatch,
    EmptyCurriculum,
    InvalidSession,
    InvalidStage,
    Session,
    SessionAlreadyExists,
    UnknownSession,
    reschedule_is_repeat,
    revise_curriculum,
    schedule_session,
    session_refs,
    stage_completed_under_any_revision,
)


def promoter_session(session_id: str, stage: int = 1, fiscal_year: int = 2025) -> Session:
    return Session(
        session_id=session_id,
        fiscal_year=fiscal_year,
        method=Method.E_LEARNING,
        audience=Audience.PROMOTER,
        stage=stage,
        title="業務効率化入門",
        move_on=MoveOn.COMPLETED,
    )


SESSIONS = {
    "S1": promoter_session("S1"),
    "S2": promoter_session("S2"),
    "S3": promoter_session("S3"),
    "S-stage2": promoter_session("S-stage2", stage=2),
    "S-2024": promoter_session("S-2024", fiscal_year=2024),
    "S-base": Session("S-base", 2025, Method.CLASSROOM, Audience.ALL_STAFF, "基礎研修"),
}


def test_a_promoter_session_needs_a_stage() -> None:
    with pytest.raises(InvalidSession):
        schedule_session(replace(promoter_session("S1"), stage=None))


def test_a_baseline_session_has_no_stage() -> None:
    with pytest.raises(InvalidSession):
        schedule_session(replace(SESSIONS["S-base"], stage=2))


def test_a_session_starting_outside_its_fiscal_year_is_refused() -> None:
    with pytest.raises(InvalidSession):
        schedule_session(replace(SESSIONS["S1"], starts_at=datetime(2026, 4, 1, 9, 0, tzinfo=JST)))


def test_a_session_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidSession):
        schedule_session(
            replace(
                SESSIONS["S1"],
                starts_at=datetime(2025, 6, 1, 10, tzinfo=JST),
                ends_at=datetime(2025, 6, 1, 9, tzinfo=JST),
            )
        )


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(InvalidSession):
        schedule_session(replace(SESSIONS["S-base"], capacity=0))


def test_scheduling_the_same_session_twice_is_a_repeat_but_a_different_one_is_refused() -> None:
    assert reschedule_is_repeat(SESSIONS["S1"], SESSIONS["S1"]) is True
    with pytest.raises(SessionAlreadyExists):
        reschedule_is_repeat(SESSIONS["S1"], replace(SESSIONS["S1"], title="別の研修"))


def test_an_activity_iri_names_the_session_by_its_last_segment() -> None:
    assert session_refs("https://lms.example/activities/S-2025-001/") == (
        "https://lms.example/activities/S-2025-001",
        "S-2025-001",
    )
    assert session_refs("S-2025-001") == ("S-2025-001",)


def test_the_first_curriculum_of_a_stage_is_revision_one_in_a_stable_order() -> None:
    revision = revise_curriculum(2025, 1, ["S2", "S1", "S2"], SESSIONS, latest=None)
    assert revision == CurriculumRevision(2025, 1, 1, ("S1", "S2"))


def test_publishing_the_same_sessions_again_is_not_a_change() -> None:
    latest = CurriculumRevision(2025, 1, 1, ("S1", "S2"))
    assert revise_curriculum(2025, 1, ["S2", "S1"], SESSIONS, latest) is None


def test_changing_the_sessions_publishes_the_next_revision() -> None:
    latest = CurriculumRevision(2025, 1, 1, ("S1", "S2"))
    assert revise_curriculum(2025, 1, ["S1", "S3"], SESSIONS, latest) == CurriculumRevision(2025, 1, 2, ("S1", "S3"))


def test_a_curriculum_with_an_unknown_session_is_refused() -> None:
    with pytest.raises(UnknownSession):
        revise_curriculum(2025, 1, ["S1", "nope"], SESSIONS, None)


@pytest.mark.parametrize("session_id", ["S-stage2", "S-2024", "S-base"])
def test_a_curriculum_may_require_only_promoter_sessions_of_its_year_and_stage(session_id: str) -> None:
    with pytest.raises(CurriculumSessionMismatch):
        revise_curriculum(2025, 1, ["S1", session_id], SESSIONS, None)


def test_an_empty_curriculum_is_refused() -> None:
    with pytest.raises(EmptyCurriculum):
        revise_curriculum(2025, 1, [], SESSIONS, None)


def test_a_stage_outside_one_to_five_is_refused() -> None:
    with pytest.raises(InvalidStage):
        revise_curriculum(2025, 6, ["S1"], SESSIONS, None)


def test_a_curriculum_change_during_the_year_never_takes_a_completion_away() -> None:
    first = CurriculumRevision(2025, 1, 1, ("S1", "S2"))
    changed = CurriculumRevision(2025, 1, 2, ("S1", "S3"))
    assert stage_completed_under_any_revision([first, changed], frozenset({"S1", "S2"}))
    assert stage_completed_under_any_revision([first, changed], frozenset({"S1", "S3"}))
    assert not stage_completed_under_any_revision([first, changed], frozenset({"S2", "S3"}))
