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
OUTBOX_OLDEST_AGE = Gauge(
    "dx_outbox_oldest_unpublished_seconds", "Age of the oldest outbox event not yet published", ["service"]
)
OUTBOX_DEAD = Counter(
    "dx_outbox_dead_total", "Outbox events moved to outbox_dead after too many failed publishes", ["service"]
)
DEPENDENCY_AVAILABLE = Gauge(
    "dx_dependency_available",
    "Whether the consumers find the dependency answering (1) or wait for it (0)",
    ["service", "dependency"],
)
WEBHOOK_ID_REUSED = Counter(
    "dx_webhook_delivery_id_reused_total",
    "Webhook deliveries refused because an id seen before came with a different body",
    ["service", "id_kind"],
)
DB_ROUND_TRIPS = Counter(
    "dx_db_round_trips_total",
    "Statements a service's pool sent to PostgreSQL (each one is a round trip)",
    ["service"],
)
