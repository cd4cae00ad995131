"""The one way a service is assembled: FastAPI for HTTP and FastStream subscribers in the same process.

`build_service` wires settings, logging, the asyncpg pool (search_path = the service's schema),
migrations, the broker and its topology, the subscribers, the outbox relay, the correlation-id
middleware, token authentication (deny by default, `dx_shared.access`), security headers, problem+json
errors, `/healthz` and `/readyz`; `/metrics` on an internal port of its own, `/docs` in development mode.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from faststream.specification import AsyncAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dx_shared import context
from dx_shared.access import AuthenticationMiddleware
from dx_shared.auth import ClaimNames, TokenVerifier
from dx_shared.bus import consumer_queue, declare_topology, events_exchange, new_broker, queue_name
from dx_shared.consumer import Subscription, consume
from dx_shared.contracts import produced_by
from dx_shared.database import create_pool, ensure_database, migrate
from dx_shared.hardening import SecurityHeadersMiddleware, install_offline_docs, metrics_server
from dx_shared.logging import configure_logging, get_logger
from dx_shared.metrics import HTTP_REQUESTS
from dx_shared.outbox import OutboxRelay
from dx_shared.problems import install_problem_handlers, problem_response
from dx_shared.settings import Settings, get_settings
from dx_shared.uploads import too_large

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"

StartupHook = Callable[[FastAPI], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    migrations: Path
    routers: Sequence[APIRouter] = ()
    subscriptions: Sequence[Subscription] = ()
    title: str = ""
    description: str = ""
    version: str = "1.0.0"
    on_startup: Sequence[StartupHook] = field(default=())
    on_shutdown: Sequence[StartupHook] = field(default=())


# Async, so FastAPI calls them on the event loop instead of hopping to a worker thread per request.
async def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def _register_subscribers(
    app: FastAPI, broker: RabbitBroker, spec: ServiceSpec, settings: Settings
) -> dict[str, list[str]]:
    bindings: dict[str, list[str]] = {}
    for subscription in spec.subscriptions:
        name = settings.queue_prefix + queue_name(spec.name, subscription.purpose)
        bindings[name] = subscription.bindings()

        broker.subscriber(
            consumer_queue(settings, name),
            ack_policy=AckPolicy.MANUAL,
            channel=Channel(prefetch_count=settings.prefetch),
            title=name,
            description=subscription.description
            or "Consumes: " + ", ".join(model.routing_key() for model in subscription.events),
        )(_message_handler(app, broker, settings, spec.name, name, subscription))
    return bindings


def _message_handler(
    app: FastAPI,
    broker: RabbitBroker,
    settings: Settings,
    service: str,
    queue: str,
    subscription: Subscription,
) -> Callable[[RabbitMessage], Awaitable[None]]:
    async def on_message(message: RabbitMessage) -> None:
        await consume(
            pool=app.state.pool,
            broker=broker,
            settings=settings,
            service=service,
            queue=queue,
            subscription=subscription,
            message=_AmqpMessage(message),
        )

    return on_message


class _AmqpMessage:
    """The FastStream message seen through the small interface the shared consumer needs."""

    def __init__(self, message: RabbitMessage) -> None:
        self._message = message
        raw = message.raw_message
        self.body: bytes = message.body
        self.headers: Any = raw.headers
        self.message_id: str | None = raw.message_id
        self.routing_key: str | None = raw.routing_key

    async def ack(self) -> None:
        await self._message.ack()

    async def reject(self, requeue: bool = False) -> None:
        await self._message.reject(requeue=requeue)


def _document_publishers(broker: RabbitBroker, spec: ServiceSpec, settings: Settings) -> None:
    for model in produced_by(spec.name):
        broker.publisher(
            exchange=events_exchange(settings),
            routing_key=model.routing_key(),
            persist=True,
            title=model.routing_key(),
            description=(model.__doc__ or model.EVENT_NAME).strip().splitlines()[0]
            + f" (CloudEvents type {model.ce_type()}, structured mode; `data` is the schema below)",
            schema=model,
        )


def build_service(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    broker = new_broker(settings, spec.name)
    bindings: dict[str, list[str]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level, settings.log_json)
        database_url = settings.database_url_of(spec.name)
        await ensure_database(database_url)
        pool = await create_pool(
            database_url, spec.name, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        app.state.pool = pool
        relay: OutboxRelay | None = None
        metrics = contextlib.ExitStack()
        try:
            app.state.metrics_port = metrics.enter_context(
                metrics_server(settings.metrics_host, settings.metrics_port_of(spec.name))
            )
            await migrate(pool, spec.name, spec.migrations)
            await broker.connect()
            await declare_topology(broker, settings, bindings)
            await broker.start()
            relay = OutboxRelay(pool=pool, broker=broker, settings=settings, service=spec.name)
            await relay.start()
            for hook in spec.on_startup:
                await hook(app)
            log.info("service_started", queues=sorted(bindings))
            yield
        finally:
            for hook in spec.on_shutdown:
                with contextlib.suppress(Exception):
                    await hook(app)
            if relay is not None:
                await relay.stop()
            with contextlib.suppress(Exception):
                await broker.stop()
            await pool.close()
            metrics.close()
            log.info("service_stopped")

    app = FastAPI(
        title=spec.title or f"dx-talent {spec.name}",
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_url="/openapi.json" if settings.dev_mode else None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    app.state.broker = broker
    app.state.service_name = spec.name
    bindings.update(_register_subscribers(app, broker, spec, settings))
    _document_publishers(broker, spec, settings)
    app.state.asyncapi = AsyncAPI(
        broker,
        title=f"dx-talent {spec.name} events",
        version=spec.version,
        description=f"Events produced and consumed by the {spec.name} service on the `{settings.exchange}` "
        "topic exchange. Every message is a CloudEvents 1.0 event in structured JSON mode.",
    )
    install_problem_handlers(app)
    # Added last = outermost: the correlation id and security headers also cover refused requests.
    app.add_middleware(AuthenticationMiddleware, verifier=app.state.token_verifier, names=ClaimNames.of(settings))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CorrelationMiddleware, service=spec.name, max_body=settings.max_upload_bytes)
    app.include_router(_operations_router(spec.name))
    if settings.dev_mode:
        install_offline_docs(app, app.title)
    for router in spec.routers:
        app.include_router(router)
    return app


class CorrelationMiddleware:
    """Plain ASGI: binds the request's correlation id (from `X-Correlation-ID` or new) for logs and the
    events the request causes, returns it in the response, refuses declared bodies over the limit, and
    times the request for /metrics."""

    def __init__(self, app: ASGIApp, service: str, max_body: int) -> None:
        self._app = app
        self._service = service
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            response = problem_response(too_large(self._max_body), scope.get("path"))
            await response(scope, receive, send)
            return
        correlation = headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        status = 500
        started = time.perf_counter()

        async def send_with_correlation(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation
            await send(message)

        tokens = context.bind(correlation, request_id)
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation, request_id=request_id):
                await self._app(scope, receive, send_with_correlation)
        finally:
            context.reset(tokens)
            route = scope.get("route")
            HTTP_REQUESTS.labels(
                self._service, scope.get("method", "?"), getattr(route, "path", "?"), str(status)
            ).observe(time.perf_counter() - started)


def _operations_router(service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz", summary="Broker and database reachable", response_model=None)
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await request.app.state.pool.fetchval("SELECT 1", timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            broker: RabbitBroker = request.app.state.broker
            checks["broker"] = "ok" if await broker.ping(timeout=2) else "unreachable"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503)

    return router
