"""A trainee can read, in Japanese and English, why they are where they are."""

from __future__ import annotations

from progression.explanation import explain_cancelled, explain_year
from tests.unit.progression.progression_builders import (
    closed,
    curriculum,
    nominated,
    stage_curriculum_completed,
    stage_one_curriculum_completed,
    standing_of,
    withdrawn,
)


def test_an_advance_is_explained_by_the_completion_of_the_previous_year() -> None:
    year = standing_of(nominated(2024), *stage_one_curriculum_completed(2024), nominated(2025)).year(2025)

    assert year is not None
    words = explain_year(year)
    assert words.ja == "令和6年度にステージ1（業務効率化）を修了したため、令和7年度はステージ2（業務改善）に進みました。"
    assert words.en == (
        "Completed stage 1 (business efficiency) in FY2024, so advanced to stage 2 (business improvement) in FY2025."
    )


def test_a_first_year_says_where_the_trainee_started_and_when_they_completed() -> None:
    year = standing_of(nominated(2024), *stage_one_curriculum_completed(2024)).year(2024)

    assert year is not None
    words = explain_year(year)
    assert words.ja.startswith("令和6年度に推薦を受け、DX推進員としてステージ1（業務効率化）から始めました。")
    assert "令和6年7月1日に修了しました" in words.ja
    assert words.en.endswith("Completed stage 1 (business efficiency) on 2024-07-01.")


def test_a_repeat_and_a_pending_year_say_what_they_wait_for() -> None:
    repeated = standing_of(nominated(2024), curriculum(2024, 1, "a"), closed(2024), nominated(2025)).year(2025)
    pending = standing_of(nominated(2024), curriculum(2024, 1, "a"), nominated(2025)).year(2025)

    assert repeated is not None and pending is not None
    assert "修了しないまま年度が締められたため、令和7年度もステージ1（業務効率化）を受講します" in explain_year(repeated).ja
    assert "令和7年度のステージは未確定です" in explain_year(pending).ja
    assert "FY2024 is closed" in explain_year(pending).en


def test_finishing_stage_five_is_explained_as_finishing_the_programme() -> None:
    facts = [nominated(2024), *stage_one_curriculum_completed(2024)]
    for fiscal_year, stage in zip(range(2025, 2029), range(2, 6), strict=True):
        facts += [nominated(fiscal_year), *stage_curriculum_completed(fiscal_year, stage)]
    year = standing_of(*facts, nominated(2029)).year(2029)

    assert year is not None
    assert "育成課程を修了" in explain_year(year).ja
    assert explain_year(year).en.startswith("Finished the programme by completing stage 5 (AI utilisation)")


def test_a_cancelled_year_is_explained_by_the_withdrawal() -> None:
    [cancelled] = standing_of(nominated(2024), withdrawn(2024)).cancelled_years

    assert "取り下げられた" in explain_cancelled(cancelled).ja
    assert "was withdrawn" in explain_cancelled(cancelled).en
