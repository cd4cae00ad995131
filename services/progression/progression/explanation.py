"""Why a person is where they are, year by year, in sentences a trainee can read (Japanese, English)."""

from __future__ import annotations

from dataclasses import dataclass

from dx_shared.calendar import fiscal_year_code, fiscal_year_label_ja, reiwa_date_ja, to_jst
from progression.domain import (
    CancelledYear,
    DecisionKind,
    RepeatReason,
    YearStanding,
)

STAGE_NAMES: dict[int, tuple[str, str]] = {
    1: ("業務効率化", "business efficiency"),
    2: ("業務改善", "business improvement"),
    3: ("業務改革", "business reform"),
    4: ("データ利活用", "data utilisation"),
    5: ("ＡＩ等活用", "AI utilisation"),
}


@dataclass(frozen=True)
class Explanation:
    ja: str
    en: str


def stage_ja(stage: int) -> str:
    return f"ステージ{stage}（{STAGE_NAMES[stage][0]}）"


def stage_en(stage: int) -> str:
    return f"stage {stage} ({STAGE_NAMES[stage][1]})"


def explain_year(year: YearStanding) -> Explanation:
    decision = _explain_decision(year)
    if year.completion is None or year.stage is None:
        return decision
    day = to_jst(year.completion.completed_at).date()
    return Explanation(
        ja=f"{decision.ja}{fiscal_year_label_ja(year.fiscal_year)}の{stage_ja(year.stage)}は"
        f"{reiwa_date_ja(day)}に修了しました。",
        en=f"{decision.en} Completed {stage_en(year.stage)} on {day.isoformat()}.",
    )


def explain_cancelled(year: CancelledYear) -> Explanation:
    fy_ja, fy_en = fiscal_year_label_ja(year.fiscal_year), fiscal_year_code(year.fiscal_year)
    return Explanation(
        ja=f"{fy_ja}の推薦は、修了した研修がないうちに取り下げられたため、この年度の受講は取り消されました。",
        en=f"The nomination for {fy_en} was withdrawn before any session was completed, "
        f"so the {fy_en} enrolment was cancelled.",
    )


def _explain_decision(year: YearStanding) -> Explanation:
    fy_ja, fy_en = fiscal_year_label_ja(year.fiscal_year), fiscal_year_code(year.fiscal_year)
    previous = year.deciding_fiscal_year
    if year.kind is DecisionKind.PENDING or year.stage is None:
        return _explain_pending(year)
    if previous is None:
        return Explanation(
            ja=f"{fy_ja}に推薦を受け、DX推進員として{stage_ja(year.stage)}から始めました。",
            en=f"Nominated for {fy_en}, so started as a DX promoter at {stage_en(year.stage)}.",
        )
    prev_ja, prev_en = fiscal_year_label_ja(previous), fiscal_year_code(previous)
    stage = year.stage
    if year.kind is DecisionKind.ADVANCED:
        return Explanation(
            ja=f"{prev_ja}に{stage_ja(stage - 1)}を修了したため、{fy_ja}は{stage_ja(stage)}に進みました。",
            en=f"Completed {stage_en(stage - 1)} in {prev_en}, so advanced to {stage_en(stage)} in {fy_en}.",
        )
    if year.reason is RepeatReason.FINISHED:
        return Explanation(
            ja=f"{prev_ja}に{stage_ja(stage)}を修了し、育成課程を修了（修了者）しているため、"
            f"{fy_ja}も{stage_ja(stage)}にとどまります。",
            en=f"Finished the programme by completing {stage_en(stage)} in {prev_en}, "
            f"so stays at {stage_en(stage)} in {fy_en}.",
        )
    return Explanation(
        ja=f"{prev_ja}に{stage_ja(stage)}を修了しないまま年度が締められたため、{fy_ja}も{stage_ja(stage)}を受講します。",
        en=f"Did not complete {stage_en(stage)} before {prev_en} was closed, so repeats {stage_en(stage)} in {fy_en}.",
    )


def _explain_pending(year: YearStanding) -> Explanation:
    fy_ja, fy_en = fiscal_year_label_ja(year.fiscal_year), fiscal_year_code(year.fiscal_year)
    awaited = year.awaiting_fiscal_year or year.deciding_fiscal_year or year.fiscal_year
    aw_ja, aw_en = fiscal_year_label_ja(awaited), fiscal_year_code(awaited)
    return Explanation(
        ja=f"{fy_ja}のステージは未確定です。{aw_ja}のステージを修了した時点で次のステージに進み、"
        f"修了しないまま{aw_ja}が締められた場合は同じステージを受講します。",
        en=f"The stage for {fy_en} is not decided yet: it advances as soon as the {aw_en} stage is "
        f"completed, and repeats it if {aw_en} is closed without completing it.",
    )
