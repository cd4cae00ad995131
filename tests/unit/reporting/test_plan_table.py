"""The 育成計画 table: stages × fiscal years with 累計, plan beside actual, new promoters against targets."""

from __future__ import annotations

from reporting.domain import PlanCell, PlanTargets, StageYearTally, build_plan_table

TARGETS = PlanTargets(first_year=2024, last_year=2028, new_per_year=200, new_total=1000)


def test_stage_one_is_planned_at_200_a_year_and_1000_in_total_and_later_stages_have_no_number() -> None:
    table = build_plan_table(TARGETS, [], 2024, 2028)

    assert table.fiscal_years == (2024, 2025, 2026, 2027, 2028)
    stage_one, stage_two = table.rows[0], table.rows[1]
    assert [cell.plan for cell in stage_one.cells] == [200, 200, 200, 200, 200]
    assert stage_one.cumulative == PlanCell(plan=1000, entered=0, completed=0)
    assert [cell.plan for cell in stage_two.cells] == [None] * 5
    assert stage_two.cumulative.plan is None
    assert [row.name_ja for row in table.rows] == [
        "業務効率化", "業務改善", "業務改革", "データ利活用", "ＡＩ等活用"
    ]


def test_actuals_sit_in_their_cells_and_add_up_in_the_cumulative_column() -> None:
    tallies = [
        StageYearTally(2024, 1, entered=180, new=180, completed=150),
        StageYearTally(2025, 1, entered=210, new=205, completed=0),
        StageYearTally(2025, 2, entered=40, new=0, completed=12),
    ]

    table = build_plan_table(TARGETS, tallies, 2024, 2028)

    assert table.rows[0].cells[0] == PlanCell(200, 180, 150)
    assert table.rows[0].cells[1] == PlanCell(200, 210, 0)
    assert table.rows[0].cumulative == PlanCell(1000, 390, 150)
    assert table.rows[1].cells[1] == PlanCell(None, 40, 12)
    assert table.rows[1].cumulative == PlanCell(None, 40, 12)


def test_new_promoters_are_measured_against_200_a_year_and_1000_cumulative_with_the_share_reached() -> None:
    tallies = [StageYearTally(2024, 1, entered=180, new=180), StageYearTally(2025, 1, entered=230, new=205)]

    table = build_plan_table(TARGETS, tallies, 2024, 2028)

    first, second = table.new_per_year[0], table.new_per_year[1]
    assert (first.target, first.actual, first.share) == (200, 180, 0.9)
    assert (second.target, second.actual, second.share) == (200, 205, 1.025)
    assert table.new_cumulative.target == 1000
    assert table.new_cumulative.actual == 385
    assert table.new_cumulative.share == 0.385


def test_a_year_outside_the_plan_period_has_no_plan_figure() -> None:
    table = build_plan_table(TARGETS, [StageYearTally(2029, 1, entered=7, new=7)], 2028, 2029)

    assert [cell.plan for cell in table.rows[0].cells] == [200, None]
    assert table.new_per_year[1].target is None
    assert table.new_per_year[1].share is None
    assert table.new_per_year[1].actual == 7


def test_the_plan_period_is_configuration_not_a_constant() -> None:
    later_plan = PlanTargets(first_year=2029, last_year=2031, new_per_year=150, new_total=450)

    table = build_plan_table(later_plan, [], 2029, 2031)

    assert table.rows[0].cumulative.plan == 450
    assert table.new_cumulative.target == 450
