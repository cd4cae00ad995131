"""The audit trail: who changed what, and who was refused, on every service (append-only `audit_log`).

`AuditMiddleware` (plain ASGI, added by `build_service`) records one row for every state-changing
request (POST, PUT, PATCH, DELETE, whatever its outcome) and for every refusal (401 or 403 on any
method): the caller as the access layer verified it (`request.state.caller`: subject, client id, role,
department), the method, the route template and its path parameters, the status, the problem's rule
`code`, and the correlation id. No names, no bodies. An endpoint that authenticates its sender itself
(the signed webhook) names it in `request.state.audit_subject`, and may add ids in
`request.state.audit_target`. The row is written after the response: a failure to write it is logged,
never turned into a failed response.

`audit_router` serves the trail to the offices: `GET /api/v1/audit` (JSON, newest first, by cursor) and
`GET /api/v1/audit.csv` (UTF-8 with BOM), filtered by time, subject and action.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dx_shared import context
from dx_shared.access import CallerDep, require, requires_scope
from dx_shared.faults import Dependency
from dx_shared.logging import get_logger
from dx_shared.problems import PROBLEM_CONTENT_TYPE, dependency_unavailable, problem_response
from dx_shared.roles import SEES_EVERYTHING
from dx_shared.roles import Scope as TokenScope

log = get_logger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSALS = frozenset({401, 403})
NO_ROUTE = "(no route)"
MAX_CODE_BODY = 64 * 1024
WRITE_TIMEOUT = 2.0  # seconds, connection included: an unreachable database must not hold the request

# Applied by `dx_shared.database.migrate` in every service's schema. UPDATE, DELETE and TRUNCATE raise.
AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    subject         text,
    client_id       text,
    role            text,
    department_code text,
    method          text NOT NULL,
    route           text NOT NULL,
    target          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          integer NOT NULL,
    code            text,
    correlation_id  text
);
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_by_subject ON audit_log (subject, id);
CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
"""


@dataclass(frozen=True)
class AuditEntry:
    method: str
    route: str
    status: int
    target: dict[str, str] = field(default_factory=dict)
    subject: str | None = None
    client_id: str | None = None
    role: str | None = None
    department_code: str | None = None
    code: str | None = None
    correlation_id: str | None = None


def is_audited(method: str, status: int) -> bool:
    """Every state-changing request, and every refusal on any method (pure)."""
    return method.upper() in STATE_CHANGING or status in REFUSALS


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = getattr(value, "value", value)  # an enum (Role) by its value
    return str(text) or None


def audit_entry(
    *,
    method: str,
    route: str | None,
    path_params: Mapping[str, Any] | None,
    status: int,
    code: str | None,
    caller: object | None,
    subject: str | None = None,
    extra_target: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
) -> AuditEntry | None:
    """The row a finished request leaves, or None when it is not audited (pure).

    `caller` is whatever the access layer verified (a `dx_shared.roles.Caller`; read defensively, as
    older callers have no subject or client id); `subject` names a sender authenticated otherwise.
    """
    if not is_audited(method, status):
        return None
    target = {str(key): str(value) for key, value in (path_params or {}).items()}
    target.update({str(key): str(value) for key, value in (extra_target or {}).items()})
    return AuditEntry(
        method=method.upper(),
        route=route or NO_ROUTE,
        status=status,
        target=target,
        subject=_text(getattr(caller, "subject", None)) or subject,
        client_id=_text(getattr(caller, "client_id", None)),
        role=_text(getattr(caller, "role", None)),
        department_code=_text(getattr(caller, "department_code", None)),
        code=code,
        correlation_id=correlation_id,
    )


def problem_code(body: bytes) -> str | None:
    """The rule `code` of a problem+json body, if it has one (pure)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    code = document.get("code") if isinstance(document, dict) else None
    return code if isinstance(code, str) else None


async def write_entry(pool: asyncpg.Pool, entry: AuditEntry) -> None:
    """Writes the row; returns once it is committed. Rows of requests finishing at the same moment are
    written together, by one statement (one round trip for many requests under load)."""
    await asyncio.wait_for(_writer_of(pool).submit(entry), WRITE_TIMEOUT)


class _AuditWriter:
    """Group commit for one pool: the rows waiting when a write starts go in one INSERT; each request
    waits for the statement that holds its own row, so nothing changes for it but the number of trips."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    def submit(self, entry: AuditEntry) -> asyncio.Future[None]:
        """The row's future: done once the statement holding it is committed (a future, not a coroutine,
        so that waiting for it with a timeout costs no task of its own)."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, written))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return written

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await _insert(self._pool, [entry for entry, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One row the database refuses must not cost the others theirs: each is tried alone.
                for entry, written in batch:
                    try:
                        await _insert(self._pool, [entry])
                    except Exception as alone:
                        _settle(written, alone)
                    else:
                        _settle(written, None)
                continue
            for _, written in batch:
                _settle(written, None)


def _settle(written: asyncio.Future[None], error: Exception | None) -> None:
    if written.done():  # its request stopped waiting (timeout)
        return
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)


_writers: dict[int, tuple[asyncpg.Pool, _AuditWriter]] = {}


def _writer_of(pool: asyncpg.Pool) -> _AuditWriter:
    known = _writers.get(id(pool))
    if known is not None and known[0] is pool:
        return known[1]
    # A pool replaced (tests start many) leaves its writer behind: only the live ones are kept.
    for key in [key for key, (other, _) in _writers.items() if other.is_closing()]:
        del _writers[key]
    writer = _AuditWriter(pool)
    _writers[id(pool)] = (pool, writer)
    return writer


async def _insert(pool: asyncpg.Pool, entries: list[AuditEntry]) -> None:
    await pool.execute(
        "INSERT INTO audit_log (subject, client_id, role, department_code, method, route, target, status, code,"
        " correlation_id) SELECT subject, client_id, role, department_code, method, route, target::jsonb, status,"
        " code, correlation_id FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::text[], $8::integer[], $9::text[], $10::text[]) WITH ORDINALITY"
        " AS e(subject, client_id, role, department_code, method, route, target, status, code, correlation_id, n)"
        " ORDER BY n",
        [entry.subject for entry in entries],
        [entry.client_id for entry in entries],
        [entry.role for entry in entries],
        [entry.department_code for entry in entries],
        [entry.method for entry in entries],
        [entry.route for entry in entries],
        [json.dumps(entry.target) for entry in entries],
        [entry.status for entry in entries],
        [entry.code for entry in entries],
        [entry.correlation_id for entry in entries],
    )


_PER_REQUEST = frozenset({"caller", "audit_subject", "audit_target"})


class AuditMiddleware:
    """Plain ASGI: records the audited requests after their response (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # A state of this request's own: a server may hand every request the same lifespan state dict, and
        # who asked must never carry over from one request to the next.
        scope["state"] = {key: value for key, value in (scope.get("state") or {}).items() if key not in _PER_REQUEST}
        status = 500
        started = False
        is_problem = False
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status, started, is_problem
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                is_problem = content_type.startswith(PROBLEM_CONTENT_TYPE)
            elif message["type"] == "http.response.body" and is_problem and len(body) < MAX_CODE_BODY:
                body.extend(message.get("body", b"")[: MAX_CODE_BODY - len(body)])
            await send(message)

        try:
            await self._app(scope, receive, capture)
        except Exception:
            if not started:
                status = 500
            await self._record(scope, status, bytes(body) if is_problem else b"")
            raise
        await self._record(scope, status, bytes(body) if is_problem else b"")

    async def _record(self, scope: Scope, status: int, problem_body: bytes) -> None:
        method = scope.get("method", "?")
        if not is_audited(method, status):
            return
        state = scope.get("state") or {}
        route = scope.get("route")
        entry = audit_entry(
            method=method,
            route=getattr(route, "path", None),
            path_params=scope.get("path_params"),
            status=status,
            code=problem_code(problem_body) if problem_body else None,
            caller=state.get("caller"),
            subject=state.get("audit_subject"),
            extra_target=state.get("audit_target"),
            correlation_id=context.correlation_id(),
        )
        app = scope.get("app")
        pool = getattr(getattr(app, "state", None), "pool", None)
        if entry is None or pool is None:
            return
        try:
            await write_entry(pool, entry)
        except Exception as exc:
            # The response has been sent; a lost audit row is reported, never turned into a failure.
            log.warning("audit_write_failed", error=type(exc).__name__, route=entry.route, status=entry.status)


# ---- reading the trail --------------------------------------------------------------------------


class AuditRow(BaseModel):
    id: int
    at: datetime
    subject: str | None
    client_id: str | None
    role: str | None
    department_code: str | None
    method: str
    route: str = Field(description="the route template, e.g. /api/v1/nominations/{nomination_id}/withdraw")
    target: dict[str, str] = Field(description="the route's path parameters (and a few ids)")
    status: int
    code: str | None = Field(description="the rule code of a refusal (problem+json `code`)")
    correlation_id: str | None


class AuditPage(BaseModel):
    items: list[AuditRow]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    subject: str | None = None
    method: str | None = None
    route: str | None = None


def parse_action(action: str | None) -> tuple[str | None, str | None]:
    """`POST`, `/api/v1/sessions`, or `POST /api/v1/sessions` → (method, route template) (pure)."""
    text = (action or "").strip()
    if not text:
        return None, None
    first, _, rest = text.partition(" ")
    if rest.strip():
        return first.upper(), rest.strip()
    if first.startswith("/"):
        return None, first
    return first.upper(), None


def _where(filters: AuditFilter, cursor: int | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, operator, value in (
        ("at", ">=", filters.since),
        ("at", "<", filters.until),
        ("subject", "=", filters.subject),
        ("method", "=", filters.method),
        ("route", "=", filters.route),
        ("id", "<", cursor),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} {operator} ${len(args)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


_COLUMNS = "id, at, subject, client_id, role, department_code, method, route, target, status, code, correlation_id"


async def read_entries(
    pool: asyncpg.Pool, filters: AuditFilter, *, limit: int, cursor: int | None = None
) -> list[AuditRow]:
    where, args = _where(filters, cursor)
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY id DESC LIMIT {int(limit)}", *args)
    return [AuditRow(**dict(row)) for row in rows]


CSV_HEADER = [
    "ID",
    "日時 (at)",
    "主体 (subject)",
    "クライアント (client_id)",
    "役割 (role)",
    "所属コード (department_code)",
    "メソッド (method)",
    "ルート (route)",
    "対象 (target)",
    "結果 (status)",
    "規則コード (code)",
    "相関ID (correlation_id)",
]


def audit_csv(rows: list[AuditRow]) -> bytes:
    """UTF-8 with BOM, for Excel (pure)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                row.id,
                row.at.isoformat(),
                row.subject or "",
                row.client_id or "",
                row.role or "",
                row.department_code or "",
                row.method,
                row.route,
                json.dumps(row.target, ensure_ascii=False, sort_keys=True),
                row.status,
                row.code or "",
                row.correlation_id or "",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_UNAVAILABLE_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, TimeoutError)


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", error=type(exc).__name__)
    return problem_response(dependency_unavailable(Dependency.DATABASE), request.url.path)


MAX_CSV_ROWS = 100_000
From = Annotated[AwareDatetime | None, Query(alias="from", description="at or after (ISO 8601 with offset)")]
To = Annotated[AwareDatetime | None, Query(alias="to", description="before (ISO 8601 with offset)")]
Subject = Annotated[str | None, Query(description="the token subject of the caller", max_length=256)]
Action = Annotated[
    str | None, Query(description="a method (POST), a route template, or both: `POST /api/v1/sessions`", max_length=512)
]


def audit_router() -> APIRouter:
    router = APIRouter(tags=["audit"], dependencies=[requires_scope(TokenScope.AUDIT_READ)])

    def allowed(caller: Any) -> None:
        require(caller, SEES_EVERYTHING, "read the audit trail", "監査記録の閲覧")

    def filters_of(
        since: datetime | None, until: datetime | None, subject: str | None, action: str | None
    ) -> AuditFilter:
        method, route = parse_action(action)
        return AuditFilter(since=since, until=until, subject=subject or None, method=method, route=route)

    @router.get("/api/v1/audit", response_model=AuditPage, summary="The audit trail, newest first (offices)")
    async def list_audit(
        request: Request,
        caller: CallerDep,
        since: From = None,
        until: To = None,
        subject: Subject = None,
        action: Action = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="from `next_cursor`")] = None,
    ) -> AuditPage | JSONResponse:
        allowed(caller)
        try:
            rows = await read_entries(
                request.app.state.pool,
                filters_of(since, until, subject, action),
                limit=limit,
                cursor=int(cursor) if cursor else None,
            )
        except _UNAVAILABLE_ERRORS as exc:
            return _unavailable(request, exc)
        next_cursor = str(rows[-1].id) if len(rows) == limit else None
        return AuditPage(items=rows, next_cursor=next_cursor)

    @router.get(
        "/api/v1/audit.csv",
        response_class=Response,
        summary="The audit trail as CSV, oldest first (offices; UTF-8 with BOM)",
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def audit_as_csv(
        request: Request,
        caller: CallerDep,
        since: From = None,
        until: To = None,
        subject: Subject = None,
        action: Action = None,
    ) -> Response:
        allowed(caller)
        try:
            rows = await read_entries(
                request.app.state.pool, filters_of(since, until, subject, action), limit=MAX_CSV_ROWS
            )
        except _UNAVAILABLE_ERRORS as exc:
            return _unavailable(request, exc)
        return Response(
            audit_csv(list(reversed(rows))),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )

    return router
