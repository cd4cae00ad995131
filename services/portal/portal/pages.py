"""The pages, each asking the services' APIs with the person's own token (the services enforce the rules;
a page only leaves out what the person's role would be refused anyway)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dx_shared.calendar import fiscal_year_of, parse_fiscal_year
from dx_shared.roles import Role
from portal.dashboard import stage_chart
from portal.domain import navigation_for
from portal.services_api import ServiceRefused
from portal.web import Form, MaybePerson, PageRefused, Person, SignedIn, now_utc, page, portal_of

router = APIRouter(include_in_schema=False)


def _fiscal_year(text: str | None) -> int:
    if not text:
        return fiscal_year_of(now_utc())
    try:
        return parse_fiscal_year(text)
    except ValueError as exc:
        raise PageRefused(400, "INVALID_FISCAL_YEAR", "年度の指定が正しくありません。", "Not a fiscal year.") from exc


def _not_for_you(what_ja: str) -> PageRefused:
    return PageRefused(403, "ROLE_NOT_PERMITTED", f"このページ（{what_ja}）はあなたの役割では利用できません。",
                       "Your role may not use this page.")


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, person: MaybePerson, fiscal_year: str | None = None) -> HTMLResponse:
    if person is None:
        return page(request, "welcome.html", None)
    if not navigation_for(person.caller).programme_dashboard:
        return await _trainee_dashboard(request, person)
    return await _programme_dashboard(request, person, _fiscal_year(fiscal_year))


async def _programme_dashboard(request: Request, person: SignedIn, year: int) -> HTMLResponse:
    api = portal_of(request).services
    nav = navigation_for(person.caller)
    plan, departments, baseline = await asyncio.gather(
        api.get("reporting", "/api/v1/reports/plan", person.token),
        api.get("reporting", "/api/v1/reports/departments", person.token, fiscal_year=year),
        api.get("reporting", "/api/v1/reports/baseline", person.token, fiscal_year=year),
    )
    pipeline = await api.get("reporting", "/api/v1/reports/pipeline", person.token) if nav.pipeline else None
    selected_new = next((entry for entry in plan["new_promoters"]["per_year"] if entry["fiscal_year"] == year), None)
    return page(
        request, "dashboard.html", person, fiscal_year=year, years=plan["fiscal_years"], plan=plan,
        selected_new=selected_new, chart=stage_chart(plan), departments=departments, baseline=baseline,
        pipeline=pipeline,
    )


async def _my_progress(request: Request, person: SignedIn) -> tuple[Any, Any]:
    api = portal_of(request).services
    staff_id = person.caller.staff_id or ""
    progress, standing = await asyncio.gather(
        api.get_or_none("reporting", f"/api/v1/reports/trainees/{staff_id}", person.token),
        api.get_or_none("progression", f"/api/v1/trainees/{staff_id}", person.token),
    )
    return progress, standing


async def _trainee_dashboard(request: Request, person: SignedIn) -> HTMLResponse:
    progress, standing = await _my_progress(request, person)
    return page(request, "trainee.html", person, staff_id=person.caller.staff_id, progress=progress,
                standing=standing, current_year=fiscal_year_of(now_utc()))


@router.get("/me", response_class=HTMLResponse)
async def me(request: Request, person: Person) -> HTMLResponse:
    if person.caller.staff_id is None:
        raise _not_for_you("わたしの育成状況")
    progress, standing = await _my_progress(request, person)
    current_year = fiscal_year_of(now_utc())
    this_year = next((y for y in (progress or {}).get("years", []) if y["fiscal_year"] == current_year), None)
    sessions = await portal_of(request).services.get(
        "training", "/api/v1/sessions", person.token, fiscal_year=current_year) if this_year else []
    return page(request, "me.html", person, staff_id=person.caller.staff_id, progress=progress, standing=standing,
                this_year=this_year, current_year=current_year,
                session_titles={session["session_id"]: session["title"] for session in sessions})


# ---- 自薦: a staff member applies for the self slot ----------------------------------------------------


async def _my_nominations(request: Request, person: SignedIn, year: int) -> list[dict[str, Any]]:
    found = await portal_of(request).services.get(
        "nomination", "/api/v1/nominations", person.token, fiscal_year=year, staff_id=person.caller.staff_id
    )
    return list(found.get("items", []))


@router.get("/apply", response_class=HTMLResponse)
async def apply_form(request: Request, person: Person) -> HTMLResponse:
    if not navigation_for(person.caller).self_application:
        raise _not_for_you("自薦の申込み")
    year = fiscal_year_of(now_utc())
    return page(request, "apply.html", person, fiscal_year=year, mine=await _my_nominations(request, person, year))


@router.post("/apply", response_class=HTMLResponse)
async def apply(request: Request, person: Person, form: Form) -> Response:
    if not navigation_for(person.caller).self_application:
        raise _not_for_you("自薦の申込み")
    year = fiscal_year_of(now_utc())
    try:
        await portal_of(request).services.post(
            "nomination", "/api/v1/nominations", person.token,
            {"staff_id": person.caller.staff_id, "fiscal_year": year, "slot": "self"},
        )
    except ServiceRefused as refused:
        if refused.status in (401, 403) or refused.status >= 500:
            raise
        return page(request, "apply.html", person, status_code=refused.status, fiscal_year=year,
                    mine=await _my_nominations(request, person, year), refusal=refused.title_ja,
                    refusal_code=refused.code)
    return RedirectResponse("/apply?done=1", status_code=303)


# ---- 推薦枠: a department head nominates one of their people, or withdraws ----------------------------------


async def _department_state(request: Request, person: SignedIn, year: int) -> Any:
    code = person.caller.department_code
    return await portal_of(request).services.get_or_none(
        "nomination", f"/api/v1/departments/{code}/nominations", person.token, fiscal_year=year
    )


def _require_department_head(person: SignedIn) -> None:
    if person.caller.role is not Role.DEPARTMENT or not person.caller.department_code:
        raise _not_for_you("所属の推薦")


@router.get("/department", response_class=HTMLResponse)
async def department(request: Request, person: Person, fiscal_year: str | None = None) -> HTMLResponse:
    _require_department_head(person)
    year = _fiscal_year(fiscal_year)
    state, roster = await asyncio.gather(
        _department_state(request, person, year), _department_roster(request, person, year)
    )
    return page(request, "department.html", person, fiscal_year=year, state=state, roster=roster)


async def _department_roster(request: Request, person: SignedIn, year: int) -> list[dict[str, Any]]:
    code = person.caller.department_code
    found = await portal_of(request).services.get_or_none(
        "nomination", f"/api/v1/departments/{code}/staff", person.token, fiscal_year=year
    )
    return list(found or [])


@router.post("/department/nominate", response_class=HTMLResponse)
async def nominate(request: Request, person: Person, form: Form) -> Response:
    _require_department_head(person)
    return await _department_action(
        request, person, form, "/api/v1/nominations",
        lambda year: {"staff_id": form.get("staff_id", "").strip(), "fiscal_year": year, "slot": "recommended",
                      "department_code": person.caller.department_code},
    )


@router.post("/department/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, person: Person, form: Form) -> Response:
    _require_department_head(person)
    nomination_id = form.get("nomination_id", "").strip()
    return await _department_action(
        request, person, form, f"/api/v1/nominations/{nomination_id}/withdraw",
        lambda _year: {"reason": form.get("reason", "").strip()},
    )


async def _department_action(request: Request, person: SignedIn, form: dict[str, str], path: str,
                             body: Any) -> Response:
    year = _fiscal_year(form.get("fiscal_year"))
    try:
        await portal_of(request).services.post("nomination", path, person.token, body(year))
    except ServiceRefused as refused:
        if refused.status in (401,) or refused.status >= 500:
            raise
        state, roster = await asyncio.gather(
            _department_state(request, person, year), _department_roster(request, person, year)
        )
        return page(request, "department.html", person, status_code=refused.status, fiscal_year=year, state=state,
                    roster=roster, refusal=_refusal_text(refused), refusal_code=refused.code)
    return RedirectResponse(f"/department?fiscal_year={year}", status_code=303)


def _refusal_text(refused: ServiceRefused) -> str:
    if refused.code == "VALIDATION_ERROR":
        return "入力内容が正しくありません（職員番号、取下げ理由を確認してください）。"
    return refused.title_ja


# ---- 年度締め: the DX office closes a fiscal year behind its checklist -------------------------------------


async def _close_checklist(request: Request, person: SignedIn, year: int) -> dict[str, Any]:
    api = portal_of(request).services
    departments, pipeline, pending = await asyncio.gather(
        api.get("reporting", "/api/v1/reports/departments", person.token, fiscal_year=year),
        api.get("reporting", "/api/v1/reports/pipeline", person.token),
        api.get("progression", "/api/v1/decisions", person.token, fiscal_year=year, state="pending"),
    )
    dead_letters = sum(queue.get("messages") or 0 for queue in pipeline.get("dead_letter_queues", []))
    return {
        "missing_nomination": departments.get("missing_nomination", []),
        "unmatched": pipeline.get("unmatched_statements", {}).get("count", 0),
        "dead_letters": dead_letters,
        "dead_letter_queues": [q for q in pipeline.get("dead_letter_queues", []) if q.get("messages")],
        "pending_decisions": pending.get("items", []),
    }


def _require_dx_office(person: SignedIn) -> None:
    if not navigation_for(person.caller).close_fiscal_year:
        raise _not_for_you("年度締め")


@router.get("/office/close", response_class=HTMLResponse)
async def close_form(request: Request, person: Person, fiscal_year: str | None = None) -> HTMLResponse:
    _require_dx_office(person)
    year = _fiscal_year(fiscal_year)
    return page(request, "office_close.html", person, fiscal_year=year,
                checklist=await _close_checklist(request, person, year))


@router.post("/office/close", response_class=HTMLResponse)
async def close_year(request: Request, person: Person, form: Form) -> Response:
    _require_dx_office(person)
    year = _fiscal_year(form.get("fiscal_year"))
    if form.get("confirm") != "yes":
        return page(request, "office_close.html", person, status_code=422, fiscal_year=year,
                    checklist=await _close_checklist(request, person, year),
                    refusal="確認欄にチェックを入れてから締めてください。")
    try:
        closed = await portal_of(request).services.post(
            "progression", f"/api/v1/fiscal-years/{year}/close", person.token)
    except ServiceRefused as refused:
        if refused.status in (401,) or refused.status >= 500:
            raise
        return page(request, "office_close.html", person, status_code=refused.status, fiscal_year=year,
                    checklist=await _close_checklist(request, person, year), refusal=refused.title_ja)
    return page(request, "office_close.html", person, fiscal_year=year, closed=closed,
                checklist=await _close_checklist(request, person, year))
