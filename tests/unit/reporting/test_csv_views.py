"""The CSV downloads: one meaning per column, the plan's figures labelled as in JSON and the dashboard."""

from __future__ import annotations

import asyncio
import csv
import io

from reporting import csv_views, reports
from reporting.domain import PlanTargets, StageYearTally


class Tallies:
    async def stage_year_tallies(self, first_year: int, last_year: int) -> list[StageYearTally]:
        return [StageYearTally(2025, 1, entered=205, new=199, completed=150), StageYearTally(2025, 2, entered=40)]


def plan_rows() -> tuple[dict, list[dict[str, str]]]:
    plan = asyncio.run(reports.plan_report(Tallies(), PlanTargets(), 2024, 2028))  # type: ignore[arg-type]
    body = csv_views.plan_csv(plan).decode("utf-8-sig")
    return plan, list(csv.DictReader(io.StringIO(body)))


def test_plan_csv_has_one_meaning_per_column() -> None:
    _, rows = plan_rows()

    assert all(row["達成率 (share)"] == "" or row["達成率 (share)"].endswith("%") for row in rows)
    assert all(not row["目標 (target)"].endswith("%") and not row["実績 (actual)"].endswith("%") for row in rows)
    assert all(row["実績 (actual)"].isdigit() for row in rows)


def test_plan_csv_quotes_the_same_figures_under_the_same_labels_as_the_json() -> None:
    plan, rows = plan_rows()

    new_r7 = next(r for r in rows if r["指標 (figure)"] == "新規DX推進員（実人数）" and r["年度 (fiscal_year)"] == "2025")
    assert (new_r7["目標 (target)"], new_r7["実績 (actual)"], new_r7["達成率 (share)"]) == ("200", "199", "99.5%")
    stage_one_r7 = next(
        r for r in rows
        if r["指標 (figure)"] == "ステージ別受講者数（延べ）" and r["ステージ (stage)"] == "1" and r["年度 (fiscal_year)"] == "2025"
    )
    assert (stage_one_r7["目標 (target)"], stage_one_r7["実績 (actual)"]) == ("", "205")
    assert plan["figures"]["new_promoters"]["label_ja"] == new_r7["指標 (figure)"]
    total = next(r for r in rows if r["指標 (figure)"] == "累計DX推進員（実人数）")
    assert (total["目標 (target)"], total["実績 (actual)"]) == ("1000", "199")


def test_session_times_in_csv_are_japan_time() -> None:
    report = {"fiscal_year": 2026, "sessions": [{
        "session_id": "s1", "title": "研修", "method_ja": "集合研修", "audience_ja": "DX推進員", "stage": 1,
        "starts_at": "2026-07-20T04:00:00+00:00", "capacity": 40, "enrolled": 3, "completions": 1, "waived": 0,
    }]}

    [row] = list(csv.DictReader(io.StringIO(csv_views.sessions_csv(report).decode("utf-8-sig"))))

    assert row["開始 (starts_at, JST)"] == "2026-07-20 13:00"
