"""OpenTelemetry: one trace per completion, from the webhook request to reporting's projection.

- HTTP requests are traced by the FastAPI instrumentation; publishing by FastStream's
  `RabbitTelemetryMiddleware`, which carries the W3C trace context in the AMQP headers, and consuming by
  `consumer_span` (the consumers take their deliveries in batches, past FastStream), which continues it.
- Events leave through the outbox, later and in another task, so the trace context of the request or
  handler that committed an event is stored with its outbox row (`traceparent`) and the relay publishes
  the row as a child of it (`outbox_parent`); the consumers' middleware continues the trace.
- Spans are exported over OTLP only when the standard variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`
  or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and not `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`);
  the exporter itself reads the other `OTEL_*` variables (headers, timeout, batch sizes). Without an
  exporter the context is still carried, so a trace stays whole across services that do export.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from starlette.types import ASGIApp, Receive, Scope, Send

TRACEPARENT = "traceparent"
_UNTRACED_PATHS = "/healthz,/readyz,/metrics"

_provider: TracerProvider | None = None


def export_requested(environ: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for spans to be exported over OTLP."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Installs the process's tracer provider with an OTLP exporter, when asked for (once per process)."""
    global _provider
    environ = os.environ if environ is None else environ
    if _provider is not None or not export_requested(environ):
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; the default names the service.
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"dx-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Flushes and stops the exporter installed by `configure_tracing`."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def records_spans(environ: Mapping[str, str] | None = None) -> bool:
    """Whether spans of this process go anywhere: an exporter is asked for, or a tracer provider of the
    SDK is installed already (a test's in-memory one)."""
    return export_requested(os.environ if environ is None else environ) or isinstance(
        trace.get_tracer_provider(), TracerProvider
    )


def instrument_http(app: FastAPI) -> None:
    """A server span per request (not for the probes and /metrics), parent taken from `traceparent`.

    When no span is recorded (no exporter), the instrumentation would only carry the caller's context,
    at the cost of a span, its attributes and a second routing per request: `TraceContextCarrier` does
    just that, so what a request causes still continues the caller's trace, and is stored with it."""
    if records_spans():
        FastAPIInstrumentor.instrument_app(app, excluded_urls=_UNTRACED_PATHS, exclude_spans=["receive", "send"])
    else:
        app.add_middleware(TraceContextCarrier)


_CARRIED = frozenset({b"traceparent", b"tracestate", b"baggage"})


class TraceContextCarrier:
    """Plain ASGI: makes the context of the request's `traceparent` (and `tracestate`, `baggage`) current
    while it is handled, recording nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in _CARRIED
        }
        if scope["type"] != "http" or not carrier:
            await self._app(scope, receive, send)
            return
        token = context.attach(propagate.extract(carrier))
        try:
            await self._app(scope, receive, send)
        finally:
            context.detach(token)


def spans_recorded() -> bool:
    """Whether a tracer provider is installed. Without one a span started here is only its parent's
    context again (nothing is recorded), so a caller may carry the context on without starting it."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span (request or message being handled), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextlib.contextmanager
def outbox_parent(traceparent: str | None) -> Iterator[None]:
    """Makes the stored `traceparent` the current context, so a publish continues that trace."""
    if not traceparent:
        yield
        return
    token = context.attach(propagate.extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        context.detach(token)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, for logs; None outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def consumer_span(queue: str, routing_key: str, message_id: str | None, headers: Mapping[str, object] | None) -> Span:
    """A CONSUMER span for one delivery, child of the trace context its headers carry (named and labelled
    as FastStream's telemetry middleware names its `process` spans). Not current until `use_span`."""
    carrier = {key: value for key, value in (headers or {}).items() if isinstance(value, str)}
    return _consumer_tracer.start_span(
        f"{queue} process",
        context=propagate.extract(carrier),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation": "process",
            "messaging.destination.name": queue,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.message.id": message_id or "",
        },
    )


def use_span(span: Span) -> contextlib.AbstractContextManager[Span]:
    """Makes `span` current without ending it (a delivery's span ends when the delivery is settled)."""
    return trace.use_span(span, end_on_exit=False)


_consumer_tracer = trace.get_tracer("dx_shared.consumer")
