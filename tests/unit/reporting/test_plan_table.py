"""The 育成計画 table: each headline figure defined once — new distinct people against the target, and
trainee-years (延べ) per stage without a target — over stages × fiscal years with 累計."""

from __future__ import annotations

from reporting.domain import (
    NEW_PROMOTERS,
    NEW_PROMOTERS_CUMULATIVE,
    PLAN_FIGURES,
    STAGE_TRAINEES,
    PlanCell,
    PlanTargets,
    StageYearTally,
    build_plan_table,
)

TARGETS = PlanTargets(first_year=2024, last_year=2028, new_per_year=200, new_total=1000)


def test_the_target_is_measured_only_against_new_distinct_people_never_against_a_stages_trainee_years() -> None:
    # R7: 205 trainee-years at stage 1 (199 new people and 6 repeating), 40 at stage 2.
    tallies = [StageYearTally(2025, 1, entered=205, new=199), StageYearTally(2025, 2, entered=40)]

    table = build_plan_table(TARGETS, tallies, 2024, 2028)

    r7 = table.new_per_year[1]
    assert (r7.fiscal_year, r7.target, r7.actual, r7.share) == (2025, 200, 199, 0.995)
    assert all(cell.plan is None for row in table.rows for cell in (*row.cells, row.cumulative))
    assert table.rows[0].cells[1] == PlanCell(None, entered=205, completed=0, new=199)


def test_cumulative_new_promoters_are_distinct_people_and_stage_totals_are_trainee_years() -> None:
    # 180 new in R6; in R7 150 of them continue at stage 2 and 30 repeat stage 1, with 190 new people.
    tallies = [
        StageYearTally(2024, 1, entered=180, new=180, completed=150),
        StageYearTally(2025, 1, entered=220, new=190),
        StageYearTally(2025, 2, entered=150, completed=12),
    ]

    table = build_plan_table(TARGETS, tallies, 2024, 2028)

    assert (table.new_cumulative.target, table.new_cumulative.actual) == (1000, 370)
    assert table.new_cumulative.share == 0.37
    assert table.rows[0].cumulative == PlanCell(None, entered=400, completed=150, new=370)
    assert table.rows[1].cumulative == PlanCell(None, entered=150, completed=12, new=0)


def test_every_plan_figure_has_a_japanese_label_an_office_can_quote_and_a_definition() -> None:
    assert NEW_PROMOTERS.label_ja == "新規DX推進員（実人数）"
    assert NEW_PROMOTERS_CUMULATIVE.label_ja == "累計DX推進員（実人数）"
    assert STAGE_TRAINEES.label_ja == "ステージ別受講者数（延べ）"
    assert len({figure.key for figure in PLAN_FIGURES}) == len(PLAN_FIGURES)
    assert all(figure.definition_ja and figure.definition_en for figure in PLAN_FIGURES)


def test_stage_names_follow_the_policy() -> None:
    table = build_plan_table(TARGETS, [], 2024, 2028)

    assert table.fiscal_years == (2024, 2025, 2026, 2027, 2028)
    assert [row.name_ja for row in table.rows] == ["業務効率化", "業務改善", "業務改革", "データ利活用", "ＡＩ等活用"]


def test_a_year_outside_the_plan_period_has_no_target() -> None:
    table = build_plan_table(TARGETS, [StageYearTally(2029, 1, entered=7, new=7)], 2028, 2029)

    assert [entry.target for entry in table.new_per_year] == [200, None]
    assert table.new_per_year[1].share is None
    assert table.new_per_year[1].actual == 7


def test_the_plan_period_is_configuration_not_a_constant() -> None:
    later_plan = PlanTargets(first_year=2029, last_year=2031, new_per_year=150, new_total=450)

    table = build_plan_table(later_plan, [], 2029, 2031)

    assert [entry.target for entry in table.new_per_year] == [150, 150, 150]
    assert table.new_cumulative.target == 450
