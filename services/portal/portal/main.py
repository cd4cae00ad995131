"""Composition root of the portal: `uvicorn portal.main:app --port 8100`.

A backend-for-frontend: its own database schema holds only sessions; everything a page shows comes from
the four services' APIs, asked with the signed-in person's access token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from dx_shared.auth import ClaimNames, TokenVerifier
from dx_shared.database import create_pool, ensure_database, migrate
from dx_shared.hardening import SecurityHeadersMiddleware
from dx_shared.logging import configure_logging, get_logger
from dx_shared.service import CorrelationMiddleware
from dx_shared.settings import Settings, get_settings
from dx_shared.uploads import MULTIPART_OVERHEAD
from portal import certificates, exports, office, pages, reports_pages, signin
from portal.domain import REFERRER_POLICY, content_security_policy
from portal.services_api import ServicesApi
from portal.sessions import PostgresSessionStore
from portal.web import Portal, error_page, install_page_handlers

SERVICE = "portal"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
STATIC_DIR = Path(__file__).parent / "static"

log = get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(SERVICE, settings.log_level, settings.log_json)
        await ensure_database(settings.database_url_of(SERVICE))
        pool = await create_pool(
            settings.database_url_of(SERVICE), SERVICE, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        http = httpx.AsyncClient(timeout=settings.portal_service_timeout_seconds)
        try:
            await migrate(pool, SERVICE, MIGRATIONS_DIR)
            app.state.pool = pool
            app.state.portal = Portal(
                settings=settings,
                store=PostgresSessionStore(pool),
                verifier=TokenVerifier.from_settings(settings),
                claim_names=ClaimNames.of(settings),
                oauth=signin.oauth_client(settings),
                services=ServicesApi(http, settings),
            )
            log.info("service_started", url=settings.portal_url)
            yield
        finally:
            await http.aclose()
            await pool.close()
            log.info("service_stopped")

    app = FastAPI(title="dx-talent portal", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    install_page_handlers(app)
    _install_outage_handlers(app)
    app.add_middleware(
        SecurityHeadersMiddleware,
        content_security_policy=content_security_policy(settings.oidc_issuer),
        referrer_policy=REFERRER_POLICY,
    )
    # Room for an office's CSV upload (the services' own limit and the multipart framing), which the
    # nomination service then judges; every other form is a few hundred bytes.
    app.add_middleware(CorrelationMiddleware, service=SERVICE,
                       max_body=max(settings.max_body_bytes, settings.max_upload_bytes + MULTIPART_OVERHEAD))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(_operations_router())
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(exports.router)
    app.include_router(certificates.router)
    app.include_router(reports_pages.router)
    app.include_router(office.router)
    return app


def _install_outage_handlers(app: FastAPI) -> None:
    async def on_database_down(request: Request, exc: Exception) -> Response:
        log.warning("portal_database_unavailable", error=type(exc).__name__)
        return error_page(
            request, 503, "ただいま処理できません。しばらくしてからもう一度お試しください（何も記録されていません）。",
            "The portal's database is unavailable; nothing was recorded. Please try again shortly.",
            "SERVICE_UNAVAILABLE", headers={"Retry-After": "5"},
        )

    for error in (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError):
        app.add_exception_handler(error, on_database_down)


def _operations_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> JSONResponse:
        portal: Portal = request.app.state.portal
        checks: dict[str, str] = {}
        try:
            await request.app.state.pool.fetchval("SELECT 1", timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks.update(await portal.services.ready())
        checks["identity_provider"] = await portal.services.reachable(portal.settings.oidc_discovery)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503)

    return router


app = create_app()
