"""Prometheus metrics, defined once per process and labelled by service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "dx_events_consumed_total",
    "Events taken from a queue, by outcome",
    ["service", "queue", "type", "outcome"],
)
EVENTS_PUBLISHED = Counter("dx_events_published_total", "Outbox events confirmed by the broker", ["service"])
OUTBOX_PENDING = Gauge("dx_outbox_pending", "Outbox events not yet confirmed by the broker", ["service"])
OUTBOX_FAILURES = Counter("dx_outbox_publish_failures_total", "Failed outbox publish attempts", ["service"])
HTTP_REQUESTS = Histogram("dx_http_request_seconds", "HTTP request latency", ["service", "method", "route", "status"])
WEBHOOK_ID_REUSED = Counter(
    "dx_webhook_delivery_id_reused_total",
    "Webhook deliveries refused because an id seen before came with a different body",
    ["service", "id_kind"],
)
