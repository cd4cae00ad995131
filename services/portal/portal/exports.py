"""Excel (.xlsx) downloads of the reports, made from reporting's JSON with the person's own token (so what a
role may see is reporting's decision, never the portal's).

Every workbook: a title row with the 令和 label and the time it was made (a real date-time cell), then a
frozen header row in Japanese; counts are numbers, shares are numbers with a % format, 所属コード and 職員番号
are text so leading zeros survive."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import xlsxwriter
from fastapi import APIRouter, Request
from fastapi.responses import Response

from dx_shared.calendar import JST, fiscal_year_label_ja
from portal.pages import _fiscal_year
from portal.web import Person, now_utc, portal_of

router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Document = dict[str, Any]

TEXT, NUMBER, PERCENT, BOOLEAN = "text", "number", "percent", "boolean"


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    width: float


@dataclass(frozen=True)
class Sheet:
    name: str
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]


def content_disposition(filename_ja: str, fallback: str) -> str:
    """RFC 6266 / RFC 5987: an ASCII fallback name and the Japanese name as UTF-8 `filename*`."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename_ja, safe='')}"


def workbook_bytes(sheet: Sheet, made_at: datetime) -> bytes:
    """One worksheet: row 1 the title (令和 label) and the time made, row 2 the headers (frozen), then data."""
    output = io.BytesIO()
    book = xlsxwriter.Workbook(output, {"in_memory": True, "remove_timezone": True})
    title = book.add_format({"bold": True, "font_size": 13})
    header = book.add_format({"bold": True, "bg_color": "#E8EEF4", "border": 1, "text_wrap": True,
                              "valign": "vcenter"})
    formats = {
        TEXT: book.add_format({"num_format": "@"}),
        NUMBER: book.add_format({"num_format": "#,##0"}),
        PERCENT: book.add_format({"num_format": "0.0%"}),
        BOOLEAN: None,
    }
    stamp = book.add_format({"num_format": "yyyy/mm/dd hh:mm"})
    worksheet = book.add_worksheet(sheet.name)
    worksheet.write_string(0, 0, sheet.title, title)
    worksheet.write_string(0, len(sheet.columns) - 2, "作成日時 (JST)")
    worksheet.write_datetime(0, len(sheet.columns) - 1, made_at.astimezone(JST).replace(tzinfo=None), stamp)
    for index, column in enumerate(sheet.columns):
        worksheet.write_string(1, index, column.header, header)
        worksheet.set_column(index, index, column.width)
    for row_index, row in enumerate(sheet.rows, start=2):
        for index, (column, value) in enumerate(zip(sheet.columns, row, strict=True)):
            if value is None or value == "":
                worksheet.write_blank(row_index, index, None, formats[column.kind])
            elif column.kind in (NUMBER, PERCENT):
                worksheet.write_number(row_index, index, value, formats[column.kind])
            elif column.kind == BOOLEAN:
                worksheet.write_string(row_index, index, "はい" if value else "いいえ")
            else:
                worksheet.write_string(row_index, index, str(value), formats[TEXT])
    worksheet.freeze_panes(2, 0)
    worksheet.set_landscape()
    worksheet.set_paper(9)  # A4
    worksheet.repeat_rows(1)
    worksheet.fit_to_pages(1, 0)
    book.close()
    return output.getvalue()


def plan_sheet(report: Document) -> Sheet:
    """育成計画: one row per figure and fiscal year (and 累計), like reporting's CSV."""
    labels = {year["fiscal_year"]: year["label_ja"] for year in report["fiscal_years"]}
    figures = report["figures"]
    rows: list[list[Any]] = []
    new_label = figures["new_promoters"]["label_ja"]
    for entry in report["new_promoters"]["per_year"]:
        rows.append([new_label, None, None, entry["fiscal_year"], labels[entry["fiscal_year"]], entry["target"],
                     entry["actual"], entry["share"]])
    total = report["new_promoters"]["cumulative"]
    rows.append([figures["new_promoters_cumulative"]["label_ja"], None, None, None, "累計", total["target"],
                 total["actual"], total["share"]])
    for key, measure in (("stage_trainees", "entered"), ("stage_completions", "completed")):
        for stage in report["stages"]:
            for cell in stage["cells"]:
                rows.append([figures[key]["label_ja"], stage["stage"], stage["name_ja"], cell["fiscal_year"],
                             labels[cell["fiscal_year"]], None, cell[measure], None])
            rows.append([figures[key]["label_ja"], stage["stage"], stage["name_ja"], None, "累計（延べ）", None,
                         stage["cumulative"][measure], None])
    first, last = report["fiscal_years"][0]["fiscal_year"], report["fiscal_years"][-1]["fiscal_year"]
    return Sheet(
        name="育成計画",
        title=f"デジタル人財育成計画 実績（{fiscal_year_label_ja(first)}〜{fiscal_year_label_ja(last)}）",
        columns=[Column("指標", TEXT, 30), Column("ステージ", NUMBER, 9), Column("ステージ名", TEXT, 16),
                 Column("年度（西暦）", NUMBER, 11), Column("年度", TEXT, 13), Column("目標", NUMBER, 9),
                 Column("実績", NUMBER, 9), Column("達成率", PERCENT, 9)],
        rows=rows,
    )


def departments_sheet(report: Document) -> Sheet:
    rows = [[d["bureau"], d["code"], d["name"], d["active"], d["recommended_slot_used"], d["recommended"],
             d["self_slot"], d["trainees"], d["completions"]] for d in report["departments"]]
    return Sheet(
        name="所属別",
        title=f"所属別 推薦・受講状況（{report['label_ja']}）",
        columns=[Column("部局", TEXT, 16), Column("所属コード", TEXT, 11), Column("所属名", TEXT, 22),
                 Column("有効", BOOLEAN, 7), Column("推薦枠使用", BOOLEAN, 10), Column("推薦", NUMBER, 7),
                 Column("自薦", NUMBER, 7), Column("受講者", NUMBER, 8), Column("修了", NUMBER, 7)],
        rows=rows,
    )


def baseline_sheet(report: Document) -> Sheet:
    rows = []
    for level, entries in (("全体", [report["overall"]]), ("部局", report["bureaus"]), ("所属", report["departments"])):
        for e in entries:
            rows.append([level, e["key"], e["label"], e["staff"], e["staff_done"], e["staff_rate"], e["managers"],
                         e["managers_done"], e["managers_rate"]])
    return Sheet(
        name="基礎研修受講率",
        title=f"全職員向け基礎研修 受講率（{report['label_ja']}）",
        columns=[Column("区分", TEXT, 7), Column("コード", TEXT, 11), Column("名称", TEXT, 22),
                 Column("職員数", NUMBER, 8), Column("受講済", NUMBER, 8), Column("受講率", PERCENT, 8),
                 Column("管理職数", NUMBER, 9), Column("管理職受講済", NUMBER, 12), Column("管理職受講率", PERCENT, 12)],
        rows=rows,
    )


def _xlsx(body: bytes, filename_ja: str, fallback: str) -> Response:
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": content_disposition(filename_ja, fallback),
        "Cache-Control": "no-store",
    })


@router.get("/reports/plan.xlsx")
async def plan_xlsx(request: Request, person: Person) -> Response:
    report = await portal_of(request).services.get("reporting", "/api/v1/reports/plan", person.token)
    return _xlsx(workbook_bytes(plan_sheet(report), now_utc()), "育成計画.xlsx", "plan.xlsx")


@router.get("/reports/departments.xlsx")
async def departments_xlsx(request: Request, person: Person, fiscal_year: str | None = None) -> Response:
    year = _fiscal_year(fiscal_year)
    report = await portal_of(request).services.get(
        "reporting", "/api/v1/reports/departments", person.token, fiscal_year=year)
    label = fiscal_year_label_ja(year)
    return _xlsx(workbook_bytes(departments_sheet(report), now_utc()), f"所属別_{label}.xlsx",
                 f"departments-FY{year}.xlsx")


@router.get("/reports/baseline.xlsx")
async def baseline_xlsx(request: Request, person: Person, fiscal_year: str | None = None) -> Response:
    year = _fiscal_year(fiscal_year)
    report = await portal_of(request).services.get(
        "reporting", "/api/v1/reports/baseline", person.token, fiscal_year=year)
    label = fiscal_year_label_ja(year)
    return _xlsx(workbook_bytes(baseline_sheet(report), now_utc()), f"基礎研修受講率_{label}.xlsx",
                 f"baseline-FY{year}.xlsx")

