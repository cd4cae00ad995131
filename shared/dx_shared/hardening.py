"""What every HTTP response carries, offline API docs for development, and /metrics on an internal port.

Every response: `nosniff`, `Referrer-Policy: no-referrer`, and `Cache-Control: no-store` (personal data
must not linger in a browser or proxy cache; JSON, CSV and HTML alike). HTML also gets a
Content-Security-Policy that allows no inline script or style and no framing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import start_http_server
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    """Plain ASGI: adds the headers above to every HTTP response (a route may set its own Cache-Control).

    The portal passes its own `content_security_policy` (forms may lead to the identity provider) and a
    `referrer_policy` under which browsers still send a real Origin on its form posts (under no-referrer
    they send `Origin: null`, and the CSRF check could not tell its own pages from another site)."""

    def __init__(
        self,
        app: ASGIApp,
        content_security_policy: str = CONTENT_SECURITY_POLICY,
        referrer_policy: str = "no-referrer",
    ) -> None:
        self._app = app
        self._content_security_policy = content_security_policy
        self._referrer_policy = referrer_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = self._referrer_policy
                headers["X-Frame-Options"] = "DENY"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = self._content_security_policy
            await send(message)

        await self._app(scope, receive, send_with_headers)


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
"""


def install_offline_docs(app: FastAPI, title: str) -> None:
    """/docs with Swagger UI's files served by the service itself (no CDN) and no inline script."""
    from swagger_ui_bundle import swagger_ui_path

    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE.format(title=title))

    @router.get("/docs/init.js")
    async def docs_init() -> Response:
        return Response(_DOCS_INIT, media_type="text/javascript")

    app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")


@contextlib.contextmanager
def metrics_server(host: str, port: int) -> Iterator[int | None]:
    """Prometheus /metrics on its own internal port (0 = any free port, negative = not served)."""
    if port < 0:
        yield None
        return
    server: WSGIServer
    thread: threading.Thread
    server, thread = start_http_server(port, addr=host)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
