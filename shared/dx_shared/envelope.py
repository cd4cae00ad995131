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
