"""報告・集計: the drill-down bureau → department → person, the offices' person search, and a department
head's view of their people's progress. Every figure is reporting's (or progression's, nomination's),
asked with the person's own token, so what a role may see is the services' decision; the filters are GET
parameters so a page can be bookmarked."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dx_shared.calendar import fiscal_year_label_ja
from dx_shared.roles import Role
from portal.exports import NUMBER, TEXT, Column, Sheet, _xlsx, workbook_bytes
from portal.pages import _fiscal_year, _not_for_you
from portal.report_views import BEHIND_WEEKS_LEFT, bureaus_of, is_behind, offers_search, reports_home
from portal.services_api import ServiceRefused
from portal.web import PageRefused, Person, SignedIn, now_utc, page, portal_of

router = APIRouter(include_in_schema=False)

SLOT_LABELS = {"recommended": "推薦枠", "self": "自薦枠"}
STAGES = range(1, 6)


@dataclass(frozen=True)
class Filters:
    """年度・ステージ・部局・推薦区分: carried from level to level in the links."""

    fiscal_year: int
    stage: int | None = None
    bureau: str | None = None
    slot: str | None = None

    def query(self, **changes: Any) -> str:
        values = {"fiscal_year": self.fiscal_year, "stage": self.stage, "bureau": self.bureau, "slot": self.slot,
                  **changes}
        return urlencode({key: value for key, value in values.items() if value not in (None, "")})


def _filters(fiscal_year: str | None, stage: str | None, bureau: str | None, slot: str | None) -> Filters:
    if stage and (not stage.isdigit() or int(stage) not in STAGES):
        raise PageRefused(400, "INVALID_STAGE", "ステージは1〜5で指定してください。", "A stage is 1 to 5.")
    if slot and slot not in SLOT_LABELS:
        raise PageRefused(400, "INVALID_SLOT", "推薦区分は推薦枠か自薦枠で指定してください。",
                          "A slot is recommended or self.")
    return Filters(_fiscal_year(fiscal_year), int(stage) if stage else None, (bureau or "").strip()[:60] or None,
                   slot or None)


def _render(request: Request, person: SignedIn, template: str, filters: Filters, **context: Any) -> HTMLResponse:
    return page(request, template, person, filters=filters, fiscal_year=filters.fiscal_year,
                stages=STAGES, slot_labels=SLOT_LABELS, search=offers_search(person.caller), **context)


def _refuse_trainee(person: SignedIn) -> None:
    if person.caller.role is Role.TRAINEE:
        raise _not_for_you("所属・部局別の報告")


async def _department_rows(request: Request, person: SignedIn, year: int) -> list[dict[str, Any]]:
    report = await portal_of(request).services.get("reporting", "/api/v1/reports/departments", person.token,
                                                   fiscal_year=year)
    return list(report["departments"])


@router.get("/reports", response_class=HTMLResponse)
async def bureaus(request: Request, person: Person, fiscal_year: str | None = None, stage: str | None = None,
                  bureau: str | None = None, slot: str | None = None) -> Response:
    home = reports_home(person.caller)
    if home != "/reports":
        if home is None:
            raise _not_for_you("報告・集計")
        return RedirectResponse(home, status_code=303)
    filters = _filters(fiscal_year, stage, bureau, slot)
    rows = await _department_rows(request, person, filters.fiscal_year)
    all_bureaus = bureaus_of(rows)
    shown = [row for row in all_bureaus if filters.bureau in (None, row.bureau)]
    return _render(request, person, "reports_bureaus.html", filters, bureaus=shown,
                   bureau_names=[row.bureau for row in all_bureaus])


@router.get("/reports/bureaus/{bureau}", response_class=HTMLResponse)
async def bureau_departments(request: Request, person: Person, bureau: str, fiscal_year: str | None = None,
                             stage: str | None = None, slot: str | None = None) -> HTMLResponse:
    _refuse_trainee(person)
    filters = _filters(fiscal_year, stage, bureau, slot)
    api = portal_of(request).services
    rows, baseline = await asyncio.gather(
        _department_rows(request, person, filters.fiscal_year),
        api.get("reporting", "/api/v1/reports/baseline", person.token, fiscal_year=filters.fiscal_year),
    )
    rates = {rate["key"]: rate for rate in baseline["departments"]}
    return _render(request, person, "reports_bureau.html", filters, bureau=bureau, rates=rates,
                   departments=[row for row in rows if row["bureau"] == bureau])


async def _department_people(request: Request, person: SignedIn, code: str, filters: Filters) -> dict[str, Any]:
    """The department's trainees (reporting refuses another department's head), with names where the
    person may read the roster, the department's row and its baseline rate, and who is behind."""
    api = portal_of(request).services
    year = filters.fiscal_year
    trainees, rows, baseline, roster = await asyncio.gather(
        api.get("reporting", f"/api/v1/reports/departments/{code}/trainees", person.token, fiscal_year=year,
                stage=filters.stage, slot=filters.slot),
        _department_rows(request, person, year),
        api.get("reporting", "/api/v1/reports/baseline", person.token, fiscal_year=year),
        api.get_or_none("nomination", f"/api/v1/departments/{code}/staff", person.token, fiscal_year=year),
    )
    names = {entry["staff_id"]: entry["name"] for entry in roster or []}
    now = now_utc()
    people = [
        {**row, "name": names.get(row["staff_id"]), "remaining": row["required_count"] - row["done_count"],
         "behind": is_behind(row["status"], row["required_count"], row["done_count"], year, now)}
        for row in trainees["trainees"]
    ]
    return {
        "code": code,
        "department": next((row for row in rows if row["code"] == code), None),
        "baseline": next((rate for rate in baseline["departments"] if rate["key"] == code), None),
        "people": people,
        "behind_count": sum(1 for p in people if p["behind"]),
        "behind_weeks": BEHIND_WEEKS_LEFT,
    }


@router.get("/reports/departments/{code}", response_class=HTMLResponse)
async def department_people(request: Request, person: Person, code: str, fiscal_year: str | None = None,
                            stage: str | None = None, bureau: str | None = None,
                            slot: str | None = None) -> HTMLResponse:
    _refuse_trainee(person)
    filters = _filters(fiscal_year, stage, bureau, slot)
    view = await _department_people(request, person, code, filters)
    return _render(request, person, "reports_department.html", filters, view=view)


@router.get("/department/progress", response_class=HTMLResponse)
async def my_department_progress(request: Request, person: Person, fiscal_year: str | None = None,
                                 stage: str | None = None, slot: str | None = None) -> HTMLResponse:
    """所属長: my people's progress, who is behind, and my department's baseline completion rate."""
    code = person.caller.department_code
    if person.caller.role is not Role.DEPARTMENT or not code:
        raise _not_for_you("所属の育成状況")
    filters = _filters(fiscal_year, stage, None, slot)
    view = await _department_people(request, person, code, filters)
    return _render(request, person, "reports_department.html", filters, view=view, own_department=True)


@router.get("/reports/departments/{code}/trainees.xlsx")
async def department_people_xlsx(request: Request, person: Person, code: str, fiscal_year: str | None = None,
                                 stage: str | None = None, slot: str | None = None) -> Response:
    _refuse_trainee(person)
    filters = _filters(fiscal_year, stage, None, slot)
    view = await _department_people(request, person, code, filters)
    label = fiscal_year_label_ja(filters.fiscal_year)
    name = view["department"]["name"] if view["department"] else code
    sheet = Sheet(
        name="受講者一覧",
        title=f"{name} DX推進員の受講状況（{label}）",
        columns=[Column("職員番号", TEXT, 11), Column("氏名", TEXT, 16), Column("ステージ", NUMBER, 9),
                 Column("推薦区分", TEXT, 9), Column("状況", TEXT, 12), Column("必修研修", NUMBER, 9),
                 Column("受講済", NUMBER, 8), Column("残り", NUMBER, 7), Column("遅れ気味", TEXT, 9)],
        rows=[[p["staff_id"], p["name"], p["stage"], SLOT_LABELS.get(p["slot"] or "", ""), p["status_ja"],
               p["required_count"], p["done_count"], p["remaining"], "遅れ気味" if p["behind"] else ""]
              for p in view["people"]],
    )
    return _xlsx(workbook_bytes(sheet, now_utc()), f"受講者一覧_{code}_{label}.xlsx",
                 f"trainees-{code}-FY{filters.fiscal_year}.xlsx")


@router.get("/reports/people/{staff_id}", response_class=HTMLResponse)
async def person_page(request: Request, person: Person, staff_id: str, fiscal_year: str | None = None,
                      stage: str | None = None, bureau: str | None = None, slot: str | None = None) -> HTMLResponse:
    filters = _filters(fiscal_year, stage, bureau, slot)
    api = portal_of(request).services
    progress, standing = await asyncio.gather(
        api.get_or_none("reporting", f"/api/v1/reports/trainees/{staff_id}", person.token),
        _standing_if_shown(request, person, staff_id),
    )
    selected = next((y for y in (progress or {}).get("years", []) if y["fiscal_year"] == filters.fiscal_year), None)
    return _render(request, person, "reports_person.html", filters, staff_id=staff_id, progress=progress,
                   standing=standing, selected=selected)


async def _standing_if_shown(request: Request, person: SignedIn, staff_id: str) -> Any:
    """Progression's years and reasons, or None: progression shows a department head only the people their
    department nominated, while reporting also shows them the people on their roster (the page then shows
    reporting's figures without the reasons; reporting's own refusal still refuses the page)."""
    try:
        return await portal_of(request).services.get_or_none("progression", f"/api/v1/trainees/{staff_id}",
                                                             person.token)
    except ServiceRefused as refused:
        if refused.status == 403 and person.caller.role is Role.DEPARTMENT:
            return None
        raise


@router.get("/reports/search", response_class=HTMLResponse)
async def search(request: Request, person: Person, q: str | None = None,
                 fiscal_year: str | None = None) -> HTMLResponse:
    if not offers_search(person.caller):
        raise _not_for_you("職員の検索")
    filters = _filters(fiscal_year, None, None, None)
    text = (q or "").strip()[:40]
    found = None
    if text:
        found = await portal_of(request).services.get("nomination", "/api/v1/staff", person.token, q=text,
                                                      fiscal_year=filters.fiscal_year)
    return _render(request, person, "reports_search.html", filters, q=text, found=found)
