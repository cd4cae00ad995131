"""Reading an uploaded file (a CSV from the offices, a webhook body) with a size limit, streamed.

The body is refused with 413 as soon as it passes the limit, without reading the rest; a file may come
as the raw body or as the multipart field `file`.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from dx_shared.problems import ProblemError

# Boundaries and part headers around the file in a multipart body.
MULTIPART_OVERHEAD = 16 * 1024


def too_large(limit: int) -> ProblemError:
    return ProblemError(
        status=413,
        code="PAYLOAD_TOO_LARGE",
        title_en=f"The body is larger than {limit} bytes",
        title_ja=f"本文が上限（{limit}バイト）を超えています",
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


async def read_uploaded_file(request: Request, limit: int) -> bytes:
    """The uploaded file's bytes: the multipart field `file`, or else the raw body."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await read_body(request, limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)
    try:
        form = await request.form(max_part_size=limit)
    except HTTPException as exc:
        if "maximum size" in str(exc.detail):
            raise too_large(limit) from exc
        raise
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ProblemError(
            status=422,
            code="MISSING_FILE",
            title_en="The multipart body has no `file` field",
            title_ja="ファイル（file）が添付されていません",
        )
    raw = await upload.read()
    if len(raw) > limit:
        raise too_large(limit)
    return raw
