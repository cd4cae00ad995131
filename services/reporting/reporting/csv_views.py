"""The reports flattened into spreadsheet rows, with Japanese headers for the offices.

Conventions, the same in every file: UTF-8 with a BOM; times in Japan time as `2026-07-20 13:00`;
booleans はい/いいえ; codes that may start with 0 (所属コード, 職員番号) written `="00123"` so Excel keeps
them as text; any other cell starting with = + - @ is prefixed with `'` so it is never run as a formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reporting.domain import Code, jst_text, render_csv

Document = dict[str, Any]


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}%"


def plan_csv(report: Document) -> bytes:
    """One row per figure and fiscal year (and 累計); each column holds one kind of value: 目標 a target
    count, 実績 a count, 達成率 a percentage (empty where there is no target)."""
    header = ["指標 (figure)", "ステージ (stage)", "ステージ名", "年度 (fiscal_year)", "年度表記",
              "目標 (target)", "実績 (actual)", "達成率 (share)"]
    labels = {year["fiscal_year"]: year["label_ja"] for year in report["fiscal_years"]}
    figures = report["figures"]
    rows: list[Sequence[Any]] = []
    new_label = figures["new_promoters"]["label_ja"]
    for entry in report["new_promoters"]["per_year"]:
        rows.append([new_label, "", "", entry["fiscal_year"], labels[entry["fiscal_year"]], entry["target"],
                     entry["actual"], _percent(entry["share"])])
    total = report["new_promoters"]["cumulative"]
    rows.append([figures["new_promoters_cumulative"]["label_ja"], "", "", "", "累計", total["target"],
                 total["actual"], _percent(total["share"])])
    for key, measure in (("stage_trainees", "entered"), ("stage_completions", "completed")):
        for stage in report["stages"]:
            for cell in stage["cells"]:
                rows.append([figures[key]["label_ja"], stage["stage"], stage["name_ja"], cell["fiscal_year"],
                             labels[cell["fiscal_year"]], "", cell[measure], ""])
            rows.append([figures[key]["label_ja"], stage["stage"], stage["name_ja"], "", "累計（延べ）", "",
                         stage["cumulative"][measure], ""])
    return render_csv(header, rows)


def departments_csv(report: Document) -> bytes:
    header = ["年度 (fiscal_year)", "部局 (bureau)", "所属コード (code)", "所属名 (name)", "有効 (active)",
              "推薦枠使用 (recommended_slot_used)", "推薦 (recommended)", "自薦 (self_slot)",
              "受講者 (trainees)", "修了 (completions)"]
    rows = [[report["fiscal_year"], d["bureau"], Code(d["code"]), d["name"], d["active"], d["recommended_slot_used"],
             d["recommended"], d["self_slot"], d["trainees"], d["completions"]] for d in report["departments"]]
    return render_csv(header, rows)


def baseline_csv(report: Document) -> bytes:
    header = ["年度 (fiscal_year)", "区分 (level)", "キー (key)", "名称 (label)", "職員数 (staff)",
              "受講済 (staff_done)", "受講率 (staff_rate)", "管理職数 (managers)", "管理職受講済 (managers_done)",
              "管理職受講率 (managers_rate)"]
    rows = []
    for level, entries in (("全体", [report["overall"]]), ("部局", report["bureaus"]),
                           ("所属", report["departments"])):
        for e in entries:
            rows.append([report["fiscal_year"], level, Code(e["key"]) if level == "所属" else e["key"], e["label"], e["staff"], e["staff_done"],
                         _percent(e["staff_rate"]), e["managers"], e["managers_done"],
                         _percent(e["managers_rate"])])
    return render_csv(header, rows)


def trainee_csv(report: Document) -> bytes:
    header = ["職員番号 (staff_id)", "年度 (fiscal_year)", "年度表記", "ステージ (stage)", "ステージ名", "状態 (status)",
              "修了者 (finished)", "所属 (department_code)", "必須研修数 (required)", "受講済 (done)", "未受講 (missing)"]
    rows = []
    for year in report["years"]:
        missing = [s for s in year["sessions_required"] if s not in year["sessions_done"]]
        department = year["department_code"]
        rows.append([Code(report["staff_id"]), year["fiscal_year"], year["label_ja"], year["stage"],
                     year["stage_name_ja"], year["status_ja"], year["finished"],
                     Code(department) if department else None, year["required_count"], year["done_count"],
                     " ".join(missing)])
    return render_csv(header, rows)


def sessions_csv(report: Document) -> bytes:
    header = ["年度 (fiscal_year)", "研修ID (session_id)", "研修名 (title)", "方法 (method)", "対象 (audience)",
              "ステージ (stage)", "開始 (starts_at, JST)", "定員 (capacity)", "対象者数 (enrolled)",
              "修了 (completions)", "免除 (waived)"]
    rows = [[report["fiscal_year"], s["session_id"], s["title"], s["method_ja"], s["audience_ja"], s["stage"],
             jst_text(s["starts_at"]), s["capacity"], s["enrolled"], s["completions"], s["waived"]]
            for s in report["sessions"]]
    return render_csv(header, rows)


def pipeline_csv(report: Document) -> bytes:
    header = ["種別 (kind)", "名前 (name)", "件数 (count)", "最終イベント時刻 (last_event_time, JST)",
              "最終受信時刻 (last_received_at, JST)", "状態 (status)"]
    rows: list[Sequence[Any]] = [
        ["stream", s["routing_key"], s["events"], jst_text(s["last_event_time"]), jst_text(s["last_received_at"])]
        for s in report["streams"]
    ]
    rows = [[*row, ""] for row in rows]
    rows += [["dead_letter_queue", q["queue"], q["messages"], "", "", q["status"]]
             for q in report["dead_letter_queues"]]
    rows.append(["late_completions", "年度締め後に届いた修了", report["late_completions"]["count"], "", "", ""])
    rows.append(["unmatched_statements", "照合できない修了報告", report["unmatched_statements"]["count"], "", "", ""])
    return render_csv(header, rows)
