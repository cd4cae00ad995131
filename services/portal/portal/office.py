"""The DX office's and HR office's work pages: imports with a preview and a confirmation, sessions and
curricula, attendance, waivers, the unmatched-completions queue, and the audit trail (which the
information-policy office reads too). Each asks the services with the person's own token; the services
decide every request, a page only leaves out what the person's role would be refused anyway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from dx_shared.calendar import fiscal_year_of
from dx_shared.contracts import STAGES
from dx_shared.logging import get_logger
from dx_shared.roles import ROLE_LABELS
from portal.exports import content_disposition
from portal.import_drafts import PostgresDraftStore
from portal.office_rules import (
    AUDIT_SERVICE_LABELS,
    AUDIT_SERVICES,
    IMPORT_KINDS,
    DraftRefused,
    FormInvalid,
    ImportKind,
    Preview,
    audit_query,
    confirmable,
    may_do_office_work,
    may_read_audit_trail,
    merged_audit,
    preview_of,
    rejected_preview,
    session_request,
    staff_ids_of,
)
from portal.pages import _fiscal_year, _not_for_you
from portal.services_api import ServiceRefused
from portal.sessions import session_key
from portal.web import Form, PageRefused, Person, SignedIn, checked_form, now_utc, page, portal_of

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

METHOD_LABELS = {"e_learning": "eラーニング", "classroom": "集合研修", "hands_on": "ハンズオン"}
AUDIENCE_LABELS = {"promoter": "DX推進員", "all_staff": "全職員", "managers": "管理職"}
MOVE_ON_LABELS = {
    "completed": "受講完了で修了", "passed": "合格で修了",
    "completed_and_passed": "受講完了かつ合格で修了", "completed_or_passed": "受講完了または合格で修了",
}
STAGE_NAMES = {1: "業務効率化", 2: "業務改善", 3: "業務改革", 4: "データ利活用", 5: "ＡＩ等活用"}
ATTENDANCE_METHODS = ("classroom", "hands_on")
AUDIT_PAGE_SIZE = 200


def _office_only(person: SignedIn, what_ja: str) -> None:
    if not may_do_office_work(person.caller):
        raise _not_for_you(what_ja)


def _years_around(year: int) -> list[int]:
    return [year - 1, year, year + 1]


def _refusal(refused: ServiceRefused) -> str:
    """The Japanese words for a refusal a page shows in place; a lost sign-in or an outage is raised on."""
    if refused.status == 401 or refused.status >= 500:
        raise refused
    if refused.code == "VALIDATION_ERROR":
        return "入力内容が正しくありません。各欄を確認してください。"
    return refused.title_ja


def _office_page(request: Request, person: SignedIn, template: str, status_code: int = 200,
                 **context: Any) -> HTMLResponse:
    return page(request, template, person, status_code=status_code, method_labels=METHOD_LABELS,
                audience_labels=AUDIENCE_LABELS, move_on_labels=MOVE_ON_LABELS, stage_names=STAGE_NAMES,
                import_kinds=IMPORT_KINDS, role_labels={role.value: label for role, label in ROLE_LABELS.items()},
                **context)


@router.get("/office", response_class=HTMLResponse)
async def office_home(request: Request, person: Person) -> HTMLResponse:
    if not may_do_office_work(person.caller) and not may_read_audit_trail(person.caller):
        raise _not_for_you("事務局の業務")
    return _office_page(request, person, "office_home.html",
                        office_work=may_do_office_work(person.caller))


# ---- imports: upload → preview (dry run) → confirm ---------------------------------------------------


def _kind(kind: str) -> ImportKind:
    found = IMPORT_KINDS.get(kind)
    if found is None:
        raise PageRefused(404, "UNKNOWN_IMPORT_KIND", "その取込みの種類はありません。", "No such import.")
    return found


async def checked_upload(request: Request, person: Person) -> tuple[dict[str, str], UploadFile | None]:
    """A file upload from our own page, with the same origin and CSRF checks as every form. Its size is
    the nomination service's to judge (its refusal is what the person reads); a body far over that limit
    never gets here (the portal's body limit, set in `portal.main`)."""
    fields = await checked_form(request, person)
    upload = (await request.form()).get("file")
    return fields, upload if isinstance(upload, UploadFile) else None


Upload = Annotated[tuple[dict[str, str], UploadFile | None], Depends(checked_upload)]


def _import_page(request: Request, person: SignedIn, kind: ImportKind, year: int, status_code: int = 200,
                 **context: Any) -> HTMLResponse:
    return _office_page(request, person, "office_import.html", status_code=status_code, kind=kind,
                        fiscal_year=year, years=_years_around(fiscal_year_of(now_utc())), **context)


@router.get("/office/imports", response_class=HTMLResponse)
async def imports(request: Request, person: Person) -> Response:
    _office_only(person, "名簿等の取込み")
    return RedirectResponse("/office/imports/departments", status_code=303)


@router.get("/office/imports/{kind}", response_class=HTMLResponse)
async def import_form(request: Request, person: Person, kind: str, fiscal_year: str | None = None) -> HTMLResponse:
    _office_only(person, "名簿等の取込み")
    await PostgresDraftStore(request.app.state.pool).purge_expired(now_utc())
    return _import_page(request, person, _kind(kind), _fiscal_year(fiscal_year))


async def _dry_run(request: Request, person: SignedIn, kind: ImportKind, year: int, content: bytes) -> Preview:
    try:
        answer = await portal_of(request).services.post_file(
            "nomination", kind.path, person.token, content, fiscal_year=year, dry_run="true")
    except ServiceRefused as refused:
        if refused.code == "IMPORT_REJECTED":
            return rejected_preview(kind.key, year, refused.problem)
        raise
    return preview_of(kind.key, year, answer)


@router.post("/office/imports/{kind}/preview", response_class=HTMLResponse)
async def import_preview(request: Request, person: Person, kind: str, upload: Upload) -> HTMLResponse:
    _office_only(person, "名簿等の取込み")
    found = _kind(kind)
    fields, file = upload
    year = _fiscal_year(fields.get("fiscal_year"))
    content = await file.read() if file is not None else b""
    if not content:
        return _import_page(request, person, found, year, status_code=422,
                            refusal="取り込むファイルを選んでください（空のファイルは取り込めません）。")
    try:
        preview = await _dry_run(request, person, found, year, content)
    except ServiceRefused as refused:
        return _import_page(request, person, found, year, status_code=refused.status, refusal=_refusal(refused),
                            refusal_code=refused.code)
    held = None
    if preview.may_confirm:
        held = await PostgresDraftStore(request.app.state.pool).hold(
            person.session.cookie_value, found.key, year, (file.filename if file else None) or "upload.csv",
            content, now_utc())
    log.info("portal_import_previewed", kind=found.key, fiscal_year=year, rows=preview.rows,
             rejected=preview.rejected)
    return _import_page(request, person, found, year, preview=preview, held=held,
                        filename=(file.filename if file else "") or "")


@router.post("/office/imports/{kind}/confirm", response_class=HTMLResponse)
async def import_confirm(request: Request, person: Person, kind: str, form: Form) -> HTMLResponse:
    _office_only(person, "名簿等の取込み")
    found = _kind(kind)
    drafts = PostgresDraftStore(request.app.state.pool)
    draft_id = form.get("draft_id", "")
    try:
        held = confirmable(await drafts.find(draft_id), session_key(person.session.cookie_value), found.key,
                           now_utc())
    except DraftRefused as refused:
        log.info("portal_import_confirm_refused", code=refused.code)
        return _import_page(request, person, found, _fiscal_year(form.get("fiscal_year")),
                            status_code=refused.status, refusal=refused.message_ja, refusal_code=refused.code)
    try:
        answer = await portal_of(request).services.post_file(
            "nomination", found.path, person.token, held.content, fiscal_year=held.fiscal_year, dry_run="false")
    except ServiceRefused as refused:
        if refused.code == "IMPORT_REJECTED":
            await drafts.discard(held.draft_id)
            return _import_page(request, person, found, held.fiscal_year, status_code=422,
                                preview=rejected_preview(found.key, held.fiscal_year, refused.problem),
                                refusal="確認後にファイルの内容が受け付けられなくなりました。何も取り込んでいません。")
        return _import_page(request, person, found, held.fiscal_year, status_code=refused.status,
                            refusal=_refusal(refused), refusal_code=refused.code)
    await drafts.discard(held.draft_id)
    log.info("portal_import_confirmed", kind=found.key, fiscal_year=held.fiscal_year)
    return _import_page(request, person, found, held.fiscal_year, imported=preview_of(found.key, held.fiscal_year,
                                                                                      answer),
                        filename=held.filename)


# ---- sessions and curricula -------------------------------------------------------------------------


async def _sessions(request: Request, person: SignedIn, year: int) -> list[dict[str, Any]]:
    found = await portal_of(request).services.get("training", "/api/v1/sessions", person.token, fiscal_year=year)
    return sorted(found or [], key=lambda s: (s.get("starts_at") or "", s["title"]))


async def _sessions_page(request: Request, person: SignedIn, year: int, status_code: int = 200,
                         **context: Any) -> HTMLResponse:
    return _office_page(request, person, "office_sessions.html", status_code=status_code, fiscal_year=year,
                        years=_years_around(fiscal_year_of(now_utc())), stages=STAGES,
                        sessions=await _sessions(request, person, year), **context)


@router.get("/office/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request, person: Person, fiscal_year: str | None = None,
                        created: str | None = None) -> HTMLResponse:
    _office_only(person, "研修の登録")
    return await _sessions_page(request, person, _fiscal_year(fiscal_year), created=created)


@router.post("/office/sessions", response_class=HTMLResponse)
async def create_session(request: Request, person: Person, form: Form) -> Response:
    _office_only(person, "研修の登録")
    year = _fiscal_year(form.get("fiscal_year"))
    try:
        body = session_request(form, year)
        created = await portal_of(request).services.post("training", "/api/v1/sessions", person.token, body)
    except FormInvalid as invalid:
        return await _sessions_page(request, person, year, status_code=422, refusal=invalid.message_ja, entered=form)
    except ServiceRefused as refused:
        return await _sessions_page(request, person, year, status_code=refused.status, refusal=_refusal(refused),
                                    refusal_code=refused.code, entered=form)
    return RedirectResponse(f"/office/sessions?{urlencode({'fiscal_year': year, 'created': created['session_id']})}",
                            status_code=303)


def _stage(text: str | None) -> int:
    try:
        stage = int(text or 1)
    except ValueError:
        stage = 0
    if stage not in STAGES:
        raise PageRefused(400, "INVALID_STAGE", "ステージは1から5で指定してください。", "Stages are 1 to 5.")
    return stage


async def _curriculum_page(request: Request, person: SignedIn, year: int, stage: int, status_code: int = 200,
                           **context: Any) -> HTMLResponse:
    api = portal_of(request).services
    sessions, curriculum = await asyncio.gather(
        _sessions(request, person, year),
        api.get_or_none("training", f"/api/v1/curricula/{year}/{stage}", person.token),
    )
    eligible = [s for s in sessions if s["audience"] == "promoter" and s.get("stage") == stage]
    return _office_page(request, person, "office_curricula.html", status_code=status_code, fiscal_year=year,
                        stage=stage, stages=STAGES, years=_years_around(fiscal_year_of(now_utc())),
                        eligible=eligible, curriculum=curriculum,
                        required=set((curriculum or {}).get("session_ids", [])), **context)


@router.get("/office/curricula", response_class=HTMLResponse)
async def curricula_page(request: Request, person: Person, fiscal_year: str | None = None,
                         stage: str | None = None) -> HTMLResponse:
    _office_only(person, "カリキュラムの設定")
    return await _curriculum_page(request, person, _fiscal_year(fiscal_year), _stage(stage))


@router.post("/office/curricula", response_class=HTMLResponse)
async def set_curriculum(request: Request, person: Person, form: Form) -> Response:
    _office_only(person, "カリキュラムの設定")
    year, stage = _fiscal_year(form.get("fiscal_year")), _stage(form.get("stage"))
    session_ids = [str(value) for value in (await request.form()).getlist("session_id") if isinstance(value, str)]
    try:
        published = await portal_of(request).services.put(
            "training", f"/api/v1/curricula/{year}/{stage}", person.token, {"session_ids": session_ids})
    except ServiceRefused as refused:
        return await _curriculum_page(request, person, year, stage, status_code=refused.status,
                                      refusal=_refusal(refused), refusal_code=refused.code)
    return await _curriculum_page(request, person, year, stage, published=published)


# ---- attendance -----------------------------------------------------------------------------------


async def _attendance_page(request: Request, person: SignedIn, year: int, session_id: str | None,
                           status_code: int = 200, **context: Any) -> HTMLResponse:
    api = portal_of(request).services
    sessions = [s for s in await _sessions(request, person, year) if s["method"] in ATTENDANCE_METHODS]
    chosen = next((s for s in sessions if s["session_id"] == session_id), None)
    people: list[dict[str, Any]] = []
    present: set[str] = set()
    if chosen is not None:
        nominations, completions = await asyncio.gather(
            api.get("nomination", "/api/v1/nominations", person.token, fiscal_year=year, status="active",
                    page_size=1000) if chosen["audience"] == "promoter" else _nothing(),
            api.get("training", "/api/v1/completions", person.token, session_id=chosen["session_id"], limit=10000),
        )
        people = sorted((nominations or {}).get("items", []), key=lambda n: (n["department_code"], n["staff_id"]))
        present = {c["staff_id"] for c in completions or []}
    return _office_page(request, person, "office_attendance.html", status_code=status_code, fiscal_year=year,
                        years=_years_around(fiscal_year_of(now_utc())), sessions=sessions, chosen=chosen,
                        people=people, present=present, **context)


async def _nothing() -> None:
    return None


@router.get("/office/attendance", response_class=HTMLResponse)
async def attendance_page(request: Request, person: Person, fiscal_year: str | None = None,
                          session_id: str | None = None) -> HTMLResponse:
    _office_only(person, "出席の記録")
    return await _attendance_page(request, person, _fiscal_year(fiscal_year), session_id)


@router.post("/office/attendance", response_class=HTMLResponse)
async def record_attendance(request: Request, person: Person, form: Form) -> HTMLResponse:
    _office_only(person, "出席の記録")
    year = _fiscal_year(form.get("fiscal_year"))
    session_id = form.get("session_id", "")
    checked = [str(v) for v in (await request.form()).getlist("staff_id") if isinstance(v, str)]
    staff_ids = staff_ids_of(checked, form.get("staff_ids", ""))
    if not staff_ids:
        return await _attendance_page(request, person, year, session_id, status_code=422,
                                      refusal="出席した職員を選ぶか、職員番号を入力してください。")
    try:
        result = await portal_of(request).services.post(
            "training", f"/api/v1/sessions/{quote(session_id, safe='')}/attendance", person.token,
            {"staff_ids": staff_ids})
    except ServiceRefused as refused:
        unknown = refused.problem.get("staff_ids") if refused.code == "UNKNOWN_STAFF" else None
        return await _attendance_page(request, person, year, session_id, status_code=refused.status,
                                      refusal=_refusal(refused), refusal_code=refused.code, unknown_staff=unknown,
                                      typed=form.get("staff_ids", ""))
    return await _attendance_page(request, person, year, session_id, result=result)


# ---- waivers --------------------------------------------------------------------------------------


async def _waiver_page(request: Request, person: SignedIn, year: int, status_code: int = 200,
                       **context: Any) -> HTMLResponse:
    return _office_page(request, person, "office_waivers.html", status_code=status_code, fiscal_year=year,
                        years=_years_around(fiscal_year_of(now_utc())),
                        sessions=await _sessions(request, person, year), **context)


@router.get("/office/waivers", response_class=HTMLResponse)
async def waivers_page(request: Request, person: Person, fiscal_year: str | None = None) -> HTMLResponse:
    _office_only(person, "修了の免除")
    return await _waiver_page(request, person, _fiscal_year(fiscal_year))


@router.post("/office/waivers", response_class=HTMLResponse)
async def waive(request: Request, person: Person, form: Form) -> HTMLResponse:
    _office_only(person, "修了の免除")
    year = _fiscal_year(form.get("fiscal_year"))
    reason = form.get("reason", "").strip()
    if not reason:
        return await _waiver_page(request, person, year, status_code=422, entered=form,
                                  refusal="免除の理由を入力してください（理由は記録に残ります）。")
    body = {"session_id": form.get("session_id", ""), "staff_id": form.get("staff_id", "").strip(),
            "reason": reason, "fiscal_year": year}
    try:
        waiver = await portal_of(request).services.post("training", "/api/v1/completions/waive", person.token, body)
    except ServiceRefused as refused:
        return await _waiver_page(request, person, year, status_code=refused.status, refusal=_refusal(refused),
                                  refusal_code=refused.code, entered=form)
    return await _waiver_page(request, person, year, waiver=waiver)


# ---- the unmatched-completions queue -----------------------------------------------------------------


async def _unmatched_page(request: Request, person: SignedIn, status_code: int = 200,
                          **context: Any) -> HTMLResponse:
    api = portal_of(request).services
    queue, resolved = await asyncio.gather(
        api.get("training", "/api/v1/completions/unmatched", person.token, limit=500),
        api.get("training", "/api/v1/completions/unmatched", person.token, limit=50, include_resolved="true"),
    )
    return _office_page(request, person, "office_unmatched.html", status_code=status_code, queue=queue,
                        resolved=[u for u in resolved if u.get("resolved")][:20], **context)


@router.get("/office/unmatched", response_class=HTMLResponse)
async def unmatched_page(request: Request, person: Person, done: str | None = None) -> HTMLResponse:
    _office_only(person, "照合できない修了報告")
    return await _unmatched_page(request, person, done=done)


async def _resolve(request: Request, person: SignedIn, unmatched_id: str, action: str,
                   body: Callable[[], dict[str, Any]]) -> Response:
    try:
        await portal_of(request).services.post(
            "training", f"/api/v1/completions/unmatched/{quote(unmatched_id, safe='')}/{action}", person.token,
            body())
    except ServiceRefused as refused:
        return await _unmatched_page(request, person, status_code=refused.status, refusal=_refusal(refused),
                                     refusal_code=refused.code, refused_id=unmatched_id)
    return RedirectResponse(f"/office/unmatched?done={action}", status_code=303)


@router.post("/office/unmatched/{unmatched_id}/match", response_class=HTMLResponse)
async def match_unmatched(request: Request, person: Person, unmatched_id: str, form: Form) -> Response:
    _office_only(person, "照合できない修了報告")
    session_id = form.get("session_id", "").strip()
    return await _resolve(request, person, unmatched_id, "match", lambda: {
        "staff_id": form.get("staff_id", "").strip(), **({"session_id": session_id} if session_id else {})})


@router.post("/office/unmatched/{unmatched_id}/dismiss", response_class=HTMLResponse)
async def dismiss_unmatched(request: Request, person: Person, unmatched_id: str, form: Form) -> Response:
    _office_only(person, "照合できない修了報告")
    reason = form.get("reason", "").strip()
    if not reason:
        return await _unmatched_page(request, person, status_code=422, refused_id=unmatched_id,
                                     refusal="対象外とする理由を入力してください（理由は記録に残ります）。")
    return await _resolve(request, person, unmatched_id, "dismiss", lambda: {"reason": reason})


# ---- the audit trail ------------------------------------------------------------------------------


def _audit_reader(person: SignedIn) -> None:
    if not may_read_audit_trail(person.caller):
        raise _not_for_you("監査記録")


@router.get("/office/audit", response_class=HTMLResponse)
async def audit_page(request: Request, person: Person, service: str | None = None, since: str | None = None,
                     until: str | None = None, subject: str | None = None) -> HTMLResponse:
    _audit_reader(person)
    entered = {"service": service or "", "since": since or "", "until": until or "", "subject": subject or ""}
    try:
        query = audit_query(service, since, until, subject)
    except FormInvalid as invalid:
        return _office_page(request, person, "office_audit.html", status_code=422, refusal=invalid.message_ja,
                            entered=entered, rows=[], services=AUDIT_SERVICES, service_labels=AUDIT_SERVICE_LABELS,
                            csv_query="")
    api = portal_of(request).services
    fetch: list[Awaitable[Any]] = [
        api.get(name, "/api/v1/audit", person.token, limit=AUDIT_PAGE_SIZE, **query.params)
        for name in query.services
    ]
    pages = dict(zip(query.services, [page_["items"] for page_ in await asyncio.gather(*fetch)], strict=True))
    return _office_page(request, person, "office_audit.html", rows=merged_audit(pages)[:AUDIT_PAGE_SIZE],
                        entered=entered, services=AUDIT_SERVICES, service_labels=AUDIT_SERVICE_LABELS,
                        shown=query.services, csv_query=urlencode(query.params), page_size=AUDIT_PAGE_SIZE)


@router.get("/office/audit/{service}.csv")
async def audit_csv(request: Request, person: Person, service: str) -> Response:
    """The service's own CSV of the trail (UTF-8 with BOM), with the page's `from`/`to`/`subject`."""
    _audit_reader(person)
    if service not in AUDIT_SERVICES:
        raise PageRefused(404, "UNKNOWN_SERVICE", "そのサービスはありません。", "No such service.")
    params = {key: request.query_params.get(key) for key in ("from", "to", "subject")}
    answer = await portal_of(request).services.get_bytes(service, "/api/v1/audit.csv", person.token, **params)
    name = f"監査記録_{AUDIT_SERVICE_LABELS[service]}.csv"
    return Response(answer.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": content_disposition(name, f"audit-{service}.csv"), "Cache-Control": "no-store"})
