"""The CloudEvents 1.0 envelope (structured JSON mode) that every message on the bus wears."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dx_shared import context
from dx_shared.contracts import EventPayload, by_type

CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "jp.aomori.dx."
EVENT_ID_NAMESPACE = uuid.UUID("6f1b2c7e-3d4a-5b6c-8d9e-0a1b2c3d4e5f")


class MalformedEvent(ValueError):
    """The bytes are not a CloudEvent we can read, or its data does not fit its type: never retry."""


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    correlationid: str | None = None
    causationid: str | None = None

    def payload(self) -> EventPayload | None:
        """The typed payload, or None for an event type this version does not know."""
        model = by_type(self.type)
        if model is None:
            return None
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise MalformedEvent(f"data does not fit {self.type}: {exc.errors(include_url=False)}") from exc

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def producer_mismatch(event: CloudEvent, routing_key: str) -> str | None:
    """Why an event does not come from the producer its routing key names, or None when it does.

    The broker lets each service publish only under its own prefix (`<service>.`, topic permissions),
    so the routing key is the authenticated producer: the CloudEvents `source` must be `/dx/<service>`,
    the key must be `<service>.<EventName>.v<N>` for the event's `type`, and a known type must be one that
    service produces.
    """
    producer, dot, name_and_version = routing_key.partition(".")
    if not dot or not producer:
        return f"routing key {routing_key!r} names no producer"
    if event.source != f"/dx/{producer}":
        return f"source {event.source!r} is not the producer {producer!r} named by routing key {routing_key!r}"
    if event.type != f"{TYPE_PREFIX}{name_and_version}":
        return f"type {event.type!r} does not match routing key {routing_key!r}"
    model = by_type(event.type)
    if model is not None and producer != model.PRODUCER:
        return f"{event.type} is produced by {model.PRODUCER!r}, not by {producer!r}"
    return None


def deterministic_id(*parts: object) -> str:
    """An event id derived from the source's own ids, so a replay produces the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(str(part) for part in parts)))


def new_event(
    payload: EventPayload,
    *,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    event_id = event_id or str(uuid.uuid4())
    return CloudEvent(
        id=event_id,
        source=payload.ce_source(),
        type=payload.ce_type(),
        time=time or datetime.now(UTC),
        subject=subject,
        data=payload.model_dump(mode="json"),
        correlationid=correlation_id or context.correlation_id() or event_id,
        causationid=causation_id or context.causation_id(),
    )


def parse_event(raw: bytes) -> CloudEvent:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedEvent("a CloudEvent must be a JSON object")
    if document.get("specversion") != "1.0":
        raise MalformedEvent(f"unsupported specversion {document.get('specversion')!r}")
    try:
        return CloudEvent.model_validate(document)
    except ValidationError as exc:
        raise MalformedEvent(f"not a CloudEvent: {exc.errors(include_url=False)}") from exc
