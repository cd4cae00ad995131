"""Broker cluster settings (several addresses, quorum replication) and when spans are exported."""

from __future__ import annotations

import json

import structlog
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import Message, Receive, Scope, Send

from dx_shared.bus import consumer_queue, dead_letter_queue, new_broker
from dx_shared.logging import _add_ids
from dx_shared.settings import Settings
from dx_shared.tracing import (
    TraceContextCarrier,
    current_trace_id,
    current_traceparent,
    export_requested,
    outbox_parent,
    records_spans,
)

NODES = "amqp://u:p@rabbit-0:5672/dx\n amqp://u:p@rabbit-1:5672/dx  amqp://u:p@rabbit-2:5672/dx"


def test_the_broker_url_may_list_the_nodes_of_a_cluster() -> None:
    settings = Settings(amqp_url=NODES)
    assert settings.amqp_urls == [f"amqp://u:p@rabbit-{n}:5672/dx" for n in range(3)]
    assert Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672/").amqp_urls == ["amqp://guest:guest@127.0.0.1:5672/"]


def test_the_broker_connects_through_the_cluster_connection_with_every_address() -> None:
    broker = new_broker(Settings(amqp_url=NODES), "training")
    factory = broker._connection_kwargs["connection_class"]
    assert factory.keywords["cluster"] == Settings(amqp_url=NODES).amqp_urls


def test_quorum_queues_are_replicated_to_the_configured_group_size_only_when_set() -> None:
    default = consumer_queue(Settings(), "progression.facts")
    assert "x-quorum-initial-group-size" not in default.arguments
    assert default.arguments["x-delivery-limit"] == 5
    three = Settings(quorum_initial_group_size=3)
    assert consumer_queue(three, "progression.facts").arguments["x-quorum-initial-group-size"] == 3
    assert dead_letter_queue("progression.facts", three).arguments["x-quorum-initial-group-size"] == 3
    assert "x-quorum-initial-group-size" not in dead_letter_queue("progression.facts").arguments


def test_spans_are_exported_only_when_the_standard_variables_ask_for_it() -> None:
    assert not export_requested({})
    assert export_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert export_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not export_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
    assert not export_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"})


def test_a_stored_traceparent_becomes_the_parent_of_what_is_done_in_it() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        stored = current_traceparent()
    assert stored is not None and stored.split("-")[1] == format(request.get_span_context().trace_id, "032x")
    assert current_traceparent() is None, "outside any span there is nothing to store"
    with outbox_parent(stored), tracer.start_as_current_span("publish") as publish:
        assert publish.get_span_context().trace_id == request.get_span_context().trace_id
        assert publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    with outbox_parent(None):
        assert trace.get_current_span().get_span_context().is_valid is False


def test_log_lines_carry_the_trace_id_of_the_current_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert "trace_id" not in _add_ids(None, "info", {})
    with tracer.start_as_current_span("request") as span:
        line = _add_ids(None, "info", {"event": "x"})
        assert line["trace_id"] == current_trace_id() == format(span.get_span_context().trace_id, "032x")
    rendered = structlog.processors.JSONRenderer()(None, "info", dict(line))
    assert json.loads(rendered)["trace_id"] == line["trace_id"]


def test_without_a_tracer_provider_a_publish_span_carries_the_stored_traceparent_unchanged() -> None:
    # What lets the outbox send the stored traceparent as it is when no provider is installed
    # (`spans_recorded()` false) instead of starting and injecting a span per row.
    stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    tracer = trace.NoOpTracerProvider().get_tracer("test")
    with outbox_parent(stored), tracer.start_as_current_span("publish"):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    assert carrier == {"traceparent": stored}
async def test_without_recorded_spans_a_request_still_carries_the_callers_trace_context() -> None:
    seen: list[str | None] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(current_traceparent())

    carrier = TraceContextCarrier(handler)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    async def ignore(message: Message) -> None:
        return None

    await carrier({"type": "http", "headers": [(b"traceparent", parent.encode())]}, nothing, ignore)
    await carrier({"type": "http", "headers": [(b"x-other", b"1")]}, nothing, ignore)
    assert seen == [parent, None]
    assert current_traceparent() is None, "the caller's context is current only while its request is handled"


def test_spans_are_recorded_when_an_exporter_is_asked_for() -> None:
    assert records_spans({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
