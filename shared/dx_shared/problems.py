"""RFC 9457 problem details with a machine-readable rule `code` and messages in Japanese and English."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dx_shared.logging import get_logger

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = get_logger(__name__)


class ProblemError(Exception):
    """A refusal the caller can act on: HTTP status, rule code, and a message for people in both languages."""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        title_en: str,
        title_ja: str,
        detail: str | None = None,
        detail_ja: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {title_en}")
        self.headers = dict(headers or {})
        self.status = status
        self.code = code
        self.title_en = title_en
        self.title_ja = title_ja
        self.detail = detail
        self.detail_ja = detail_ja
        self.extra = extra

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://dx-talent.example/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title_en,
            "title_ja": self.title_ja,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.detail_ja:
            body["detail_ja"] = self.detail_ja
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def problem_response(problem: ProblemError, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.to_body(instance),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers or None,
    )


_STATUS_CODES: dict[int, tuple[str, str, str]] = {
    400: ("BAD_REQUEST", "Bad request", "リクエストが正しくありません"),
    401: ("UNAUTHORIZED", "Unauthorized", "認証に失敗しました"),
    403: ("FORBIDDEN", "Forbidden", "この操作は許可されていません"),
    404: ("NOT_FOUND", "Not found", "見つかりません"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed", "このメソッドは使用できません"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large", "リクエストが大きすぎます"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type", "この形式には対応していません"),
}


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        problem = ProblemError(
            status=422,
            code="VALIDATION_ERROR",
            title_en="The request does not have the expected shape",
            title_ja="リクエストの形式が正しくありません",
            errors=errors,
        )
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, en, ja = _STATUS_CODES.get(exc.status_code, ("HTTP_ERROR", "HTTP error", "エラーが発生しました"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != en else None
        return problem_response(
            ProblemError(status=exc.status_code, code=code, title_en=en, title_ja=ja, detail=detail),
            request.url.path,
        )

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL's class 22 (data exception): the input holds a value that cannot be stored, such as a
        # NUL character in text or a number out of range. The transaction was rolled back.
        log.info("refused_unstorable_value", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            ProblemError(
                status=422,
                code="INVALID_VALUE",
                title_en="The request holds a value that cannot be stored (e.g. a NUL character); nothing was recorded",
                title_ja="保存できない値（NUL文字など）が含まれているため、何も記録していません",
            ),
            request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
        return problem_response(
            ProblemError(
                status=500,
                code="INTERNAL_ERROR",
                title_en="Internal error; nothing was recorded",
                title_ja="内部エラーが発生しました。何も記録されていません",
            ),
            request.url.path,
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(asyncpg.exceptions.DataError, on_data_error)
    app.add_exception_handler(Exception, on_unexpected)
