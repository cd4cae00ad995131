"""The one way a service is assembled: FastAPI for HTTP and FastStream subscribers in the same process.

`build_service` wires settings, logging, the asyncpg pool (search_path = the service's schema),
migrations, the broker and its topology, the subscribers, the outbox relay, the correlation-id and audit
middlewares, token authentication (deny by default, `dx_shared.access`), security headers, problem+json
errors, `/healthz`, `/readyz` and `/api/v1/audit`; `/metrics` on an internal port of its own, `/docs` in
development mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import aio_pika
import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from faststream.specification import AsyncAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dx_shared import context
from dx_shared.access import AuthenticationMiddleware
from dx_shared.audit import AuditMiddleware, audit_router
from dx_shared.auth import ClaimNames, TokenVerifier
from dx_shared.bus import consumer_queue, declare_topology, events_exchange, new_broker, queue_name
from dx_shared.clock import system_clock
from dx_shared.consumer import Gates, Subscription, consume_batch, new_gates
from dx_shared.contracts import produced_by
from dx_shared.database import create_pool, ensure_database, migrate
from dx_shared.hardening import SecurityHeadersMiddleware, install_offline_docs, metrics_server
from dx_shared.logging import configure_logging, get_logger
from dx_shared.metrics import HTTP_REQUESTS, OUTBOX_OLDEST_AGE
from dx_shared.outbox import OutboxRelay, oldest_unpublished_age
from dx_shared.problems import install_problem_handlers, problem_response
from dx_shared.settings import Settings, get_settings
from dx_shared.tracing import configure_tracing, consumer_span, instrument_http, shutdown_tracing, use_span
from dx_shared.uploads import too_large

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
# A correlation id is stored with every event a request causes: one that is too long or holds other
# characters is replaced by a fresh one, never stored.
_SAFE_CORRELATION = re.compile(r"[A-Za-z0-9._:-]{1,128}")
WEBHOOK_PATH_PREFIX = "/webhooks/"

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
    # Run first at start-up; raising refuses to start (e.g. a missing or weak secret).
    check_settings: Sequence[Callable[[Settings], None]] = field(default=())
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


def tune_garbage_collector(gen0_threshold: int) -> None:
    """Once a service has started: what it loaded to start (modules, the app, its routes, its settings) is
    moved out of the cyclic collector's reach for good (`gc.freeze`), and the youngest generation is
    collected after `gen0_threshold` allocations instead of Python's 700. A request or an event allocates
    hundreds of short-lived objects, nearly all freed by reference counting, so the default threshold
    runs a collection every few of them for almost nothing; the training benchmark spent about a tenth
    less CPU per delivery with this. 0 leaves the collector as it is."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(gen0_threshold, older, oldest)


class DirectRoute(APIRoute):
    """A route whose endpoint takes the `Request` alone and returns its `Response`: FastAPI calls it without
    solving dependencies or validating and serialising a response model (for a hot path whose per-request
    cost counts). Its OpenAPI entry is what the route declares (`response_model`, `responses`,
    `openapi_extra`), and the endpoint must keep to it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def _register_subscribers(broker: RabbitBroker, spec: ServiceSpec, settings: Settings) -> dict[str, list[str]]:
    """Describes the subscriptions on the (documentation-only) FastStream broker for the AsyncAPI document;
    the consuming itself is `BatchConsumer`'s."""
    bindings: dict[str, list[str]] = {}
    for subscription in spec.subscriptions:
        name = settings.queue_prefix + queue_name(spec.name, subscription.purpose)
        bindings[name] = subscription.bindings()

        async def on_message(message: RabbitMessage) -> None:  # never called: documentation only
            raise NotImplementedError

        broker.subscriber(
            consumer_queue(settings, name),
            ack_policy=AckPolicy.MANUAL,
            channel=Channel(prefetch_count=settings.prefetch),
            title=name,
            description=subscription.description
            or "Consumes: " + ", ".join(model.routing_key() for model in subscription.events),
        )(on_message)
    return bindings


class _AmqpMessage:
    """An aio-pika delivery seen through the small interface the shared consumer needs."""

    def __init__(self, raw: aio_pika.abc.AbstractIncomingMessage, queue: str) -> None:
        self._raw = raw
        self.body: bytes = raw.body
        self.headers: Any = raw.headers
        self.message_id: str | None = raw.message_id
        self.routing_key: str | None = raw.routing_key
        if not raw.exchange and isinstance(self.headers, dict):
            # Re-driven from a dead-letter queue straight into the queue (the default exchange, which only an
            # operator account may write to): judge the event by the key it was first published with.
            original = self.headers.get("x-dx-original-routing-key")
            if isinstance(original, str | bytes):
                self.routing_key = original.decode() if isinstance(original, bytes) else original
        self._span = consumer_span(queue, raw.routing_key or "", self.message_id, self.headers)

    async def ack(self) -> None:
        await self._raw.ack()

    async def ack_through(self) -> None:
        await self._raw.ack(multiple=True)

    async def reject(self, requeue: bool = False) -> None:
        await self._raw.reject(requeue=requeue)

    def scope(self) -> contextlib.AbstractContextManager[object]:
        return use_span(self._span)

    def finish(self) -> None:
        self._span.end()


class BatchConsumer:
    """One queue's consumer: a channel of its own on the broker's connection with the prefetch set on it
    (RabbitMQ applies a channel's `basic.qos` to the consumers started after it, and aio-pika's robust
    channel sets it again after a reconnection), deliveries taken in batches of what has arrived (at most
    `consumer_batch_size`, waiting at most `consumer_batch_wait_ms` for more) and applied by
    `consume_batch`: one transaction and one multi-ack per batch. Batches of a channel run one after the
    other, so a multi-ack never covers a delivery of another batch."""

    def __init__(
        self,
        app: FastAPI,
        broker: RabbitBroker,
        settings: Settings,
        service: str,
        queue: str,
        subscription: Subscription,
    ) -> None:
        self._app = app
        self._broker = broker
        self._settings = settings
        self._service = service
        self._queue = queue
        self._subscription = subscription
        self._deliveries: asyncio.Queue[_AmqpMessage] = asyncio.Queue()
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._amqp_queue: aio_pika.abc.AbstractQueue | None = None
        self._tag: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        await self._open()
        self._task = asyncio.create_task(self._run(), name=f"consume-{self._queue}")

    async def _open(self) -> None:
        connection = self._broker._connection
        assert connection is not None, "the broker is connected first"
        self._channel = channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._settings.prefetch)
        self._amqp_queue = await channel.declare_queue(self._queue, passive=True)
        self._tag = await self._amqp_queue.consume(self._on_delivery, no_ack=False)

    async def _renew(self) -> None:
        """Closes the channel, so the broker takes back every delivery left unsettled on it (a later
        multi-ack must never cover one), and consumes again on a new channel."""
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
        while not self._deliveries.empty():  # deliveries of the closed channel: redelivered by the broker
            self._deliveries.get_nowait().finish()
        while True:
            try:
                await self._open()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_reopen_failed", queue=self._queue, error=type(exc).__name__)
                await asyncio.sleep(self._settings.broker_reconnect_interval)

    async def _on_delivery(self, raw: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._deliveries.put_nowait(_AmqpMessage(raw, self._queue))

    async def _next_batch(self) -> list[_AmqpMessage]:
        batch = [await self._deliveries.get()]
        size = min(self._settings.consumer_batch_size, self._settings.prefetch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.consumer_batch_wait_ms / 1000
        while len(batch) < size:
            if not self._deliveries.empty():
                batch.append(self._deliveries.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._deliveries.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            self._idle.clear()
            renew = False
            try:
                renew = await consume_batch(
                    pool=self._app.state.pool,
                    broker=self._broker,
                    settings=self._settings,
                    service=self._service,
                    queue=self._queue,
                    subscription=self._subscription,
                    messages=batch,
                    gates=self._app.state.gates,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # Left unacked: the broker redelivers them when the channel closes (the inbox dedupes).
                log.exception("batch_unsettled", queue=self._queue, size=len(batch))
                renew = True
            finally:
                for message in batch:
                    message.finish()
            if renew:
                await self._renew()
            self._idle.set()

    async def stop(self) -> None:
        """Stops taking deliveries, lets the batch under way finish (at most the broker's graceful timeout),
        and closes the channel: what is left unacked goes back to the queue."""
        if self._amqp_queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._amqp_queue.cancel(self._tag)
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 10.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()


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
    # Never connected: it holds the subscribers and publishers only for the AsyncAPI document.
    documented = new_broker(settings, spec.name)
    gates: Gates = new_gates(settings, broker, spec.name)
    bindings: dict[str, list[str]] = {}
    consumers: list[BatchConsumer] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level, settings.log_json)
        for check in spec.check_settings:
            try:
                check(settings)
            except Exception as exc:
                log.error("start_refused", reason=str(exc))
                raise
        configure_tracing(spec.name)
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
            for subscription in spec.subscriptions:
                name = settings.queue_prefix + queue_name(spec.name, subscription.purpose)
                consumer = BatchConsumer(app, broker, settings, spec.name, name, subscription)
                await consumer.start()
                consumers.append(consumer)
            relay = OutboxRelay(pool=pool, broker=broker, settings=settings, service=spec.name)
            await relay.start()
            app.state.relay = relay
            for hook in spec.on_startup:
                await hook(app)
            tune_garbage_collector(settings.gc_gen0_threshold)
            log.info("service_started", queues=sorted(bindings))
            yield
        finally:
            for hook in spec.on_shutdown:
                with contextlib.suppress(Exception):
                    await hook(app)
            for consumer in consumers:
                await consumer.stop()
            if relay is not None:
                await relay.stop()
            with contextlib.suppress(Exception):
                await broker.stop()
            await gates.close()
            await pool.close()
            metrics.close()
            log.info("service_stopped")
            shutdown_tracing()

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
    app.state.clock = system_clock
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    app.state.broker = broker
    app.state.gates = gates
    app.state.relay = None
    app.state.service_name = spec.name
    bindings.update(_register_subscribers(documented, spec, settings))
    _document_publishers(documented, spec, settings)
    app.state.asyncapi = AsyncAPI(
        documented,
        title=f"dx-talent {spec.name} events",
        version=spec.version,
        description=f"Events produced and consumed by the {spec.name} service on the `{settings.exchange}` "
        "topic exchange. Every message is a CloudEvents 1.0 event in structured JSON mode.",
    )
    install_problem_handlers(app)
    # First added = innermost. Authentication refuses before routing; the audit middleware sits outside it so
    # that it records refusals too, and reads the verified caller from the request's state afterwards.
    app.add_middleware(AuthenticationMiddleware, verifier=app.state.token_verifier, names=ClaimNames.of(settings))
    app.add_middleware(AuditMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        CorrelationMiddleware,
        service=spec.name,
        max_body=settings.max_upload_bytes,
        max_webhook_body=settings.max_body_bytes,
    )
    instrument_http(app)
    app.include_router(_operations_router(spec.name, settings))
    if settings.dev_mode:
        install_offline_docs(app, app.title)
    for router in spec.routers:
        app.include_router(router)
    app.include_router(audit_router())
    return app


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once the bytes actually streamed pass the limit (413 problem+json)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The body is larger than {limit} bytes")


def counting_receive(receive: Receive, limit: int) -> Receive:
    """`receive` that counts the body bytes as they arrive (with or without Content-Length, chunked
    included) and raises `BodyTooLarge` as soon as they pass `limit`, without reading the rest."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def safe_correlation_id(stated: str | None) -> str | None:
    """The stated correlation id when it is 1-128 characters of [A-Za-z0-9._:-], else None."""
    return stated if stated is not None and _SAFE_CORRELATION.fullmatch(stated) else None


class CorrelationMiddleware:
    """Plain ASGI: binds the request's correlation id (a safe `X-Correlation-ID`, or new) for logs and the
    events the request causes, returns it in the response, refuses bodies over the limit (declared, or
    counted as they stream: the webhook's limit under /webhooks/, the upload limit elsewhere), and times
    the request for /metrics."""

    def __init__(self, app: ASGIApp, service: str, max_body: int, max_webhook_body: int | None = None) -> None:
        self._app = app
        self._service = service
        self._max_body = max_body
        self._max_webhook_body = max_webhook_body if max_webhook_body is not None else max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path = str(scope.get("path", ""))
        limit = self._max_webhook_body if path.startswith(WEBHOOK_PATH_PREFIX) else self._max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = problem_response(too_large(limit), path)
            await response(scope, receive, send)
            return
        receive = counting_receive(receive, limit)
        stated = headers.get(CORRELATION_HEADER)
        correlation = safe_correlation_id(stated) or str(uuid.uuid4())
        if stated is not None and correlation != stated:
            log.info("correlation_id_replaced", length=len(stated))
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


def _operations_router(service: str, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get(
        "/readyz",
        summary="Broker and database reachable, outbox moving",
        description="503 when the database or the broker does not answer, or when the oldest event not yet "
        "published has waited longer than `DX_OUTBOX_MAX_AGE` seconds.",
        response_model=None,
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        body: dict[str, Any] = {}
        try:
            age = await oldest_unpublished_age(request.app.state.pool)
            checks["database"] = "ok"
            OUTBOX_OLDEST_AGE.labels(service).set(age)
            body["outbox_oldest_unpublished_seconds"] = round(age, 3)
            checks["outbox"] = "ok" if age <= settings.outbox_max_age else f"stalled: oldest event waits {age:.0f}s"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            broker: RabbitBroker = request.app.state.broker
            checks["broker"] = "ok" if await broker.ping(timeout=2) else "unreachable"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        body = {"status": "ready" if ready else "not_ready", "checks": checks, **body}
        headers = {} if ready else {"Retry-After": str(settings.retry_after_seconds)}
        return JSONResponse(body, 200 if ready else 503, headers=headers)

    return router
