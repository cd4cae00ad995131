"""Which of a person's decisions a fiscal year's closing still has to settle (the DX office's checklist)."""

from __future__ import annotations

from progression.domain import pending_on, provisional_in
from tests.unit.progression.progression_builders import closed, nominated, stage_one_curriculum_completed, standing_of


def test_a_renomination_waiting_for_an_open_year_is_pending_on_that_year_and_on_its_own() -> None:
    standing = standing_of(nominated(2024), nominated(2025))
    assert [(y.fiscal_year, y.awaiting_fiscal_year) for y in pending_on(standing, 2024)] == [(2025, 2024)]
    assert [y.fiscal_year for y in pending_on(standing, 2025)] == [2025]
    assert pending_on(standing, 2023) == ()


def test_nothing_is_pending_once_the_awaited_year_is_closed_or_its_stage_completed() -> None:
    assert pending_on(standing_of(nominated(2024), nominated(2025), closed(2024)), 2024) == ()
    assert pending_on(standing_of(nominated(2024), *stage_one_curriculum_completed(2024), nominated(2025)), 2024) == ()


def test_a_stage_is_provisional_until_its_year_and_every_earlier_year_are_closed() -> None:
    assert [y.stage for y in provisional_in(standing_of(nominated(2024)), 2024)] == [1]
    assert provisional_in(standing_of(nominated(2024), closed(2024)), 2024) == ()
    assert provisional_in(standing_of(nominated(2024)), 2025) == ()
