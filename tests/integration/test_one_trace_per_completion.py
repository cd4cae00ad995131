"""One completion is one trace (issue 13): training's webhook request, its SessionCompleted, progression's
decision and its StageCompleted, and reporting's projection, across three services and two outbox relays.

The three services run in-process on the real database and broker, sharing one tracer provider whose
spans go to an in-memory exporter; the facts nomination would publish are published as it would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dx_shared import contracts as c
from dx_shared.envelope import new_event
from dx_shared.settings import Settings
from progression.main import create_app as create_progression
from reporting.main import create_app as create_reporting
from tests.integration.progression.progression_events import nominated
from tests.support import publish_event, running_app, sign_webhook
from training.main import create_app as create_training

pytestmark = pytest.mark.integration

STAFF_ID = "2400001"
ROUTING_KEY = "messaging.rabbitmq.destination.routing_key"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Spans of this test in memory. The global provider can be set once per process: reuse an SDK one."""
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # records nothing more


def _routing_key(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get(ROUTING_KEY, ""))


def _spans(exporter: InMemorySpanExporter, kind: SpanKind, routing_key: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.kind == kind and _routing_key(span) == routing_key and span.name.endswith(("process", "publish"))
    ]


async def _eventually(check, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_one_completion_is_one_trace_through_training_progression_and_reporting(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    async with (
        running_app(create_training, settings) as training,
        running_app(create_progression, settings) as progression,
        running_app(create_reporting, settings) as reporting,
    ):
        roster = c.StaffImported(fiscal_year=2024, staff=[c.StaffEntry(staff_id=STAFF_ID, department_code="0101")], total=1)
        await publish_event(settings, new_event(roster))
        await publish_event(settings, nominated(STAFF_ID, 2024))
        session = {
            "session_id": "R6-S1-EL",
            "fiscal_year": 2024,
            "method": "e_learning",
            "audience": "promoter",
            "stage": 1,
            "title": "ステージ1 e-ラーニング",
        }
        assert (await training.post("/api/v1/sessions", json=session)).status_code == 201
        assert (await training.put("/api/v1/curricula/2024/1", json={"session_ids": ["R6-S1-EL"]})).status_code == 200

        async def plan_cell() -> dict[str, int]:
            plan = (await reporting.get("/api/v1/reports/plan", params={"from": 2024, "to": 2024})).json()
            cell: dict[str, int] = next(row for row in plan["stages"] if row["stage"] == 1)["cells"][0]
            return cell

        async def entered() -> bool:
            trainee = await progression.get(f"/api/v1/trainees/{STAFF_ID}")
            return trainee.status_code == 200 and (await plan_cell())["entered"] == 1

        await _eventually(entered, "the trainee to enter stage 1 in progression and reporting")
        await asyncio.sleep(1.0)  # the set-up's own messages settle
        exporter.clear()

        body = json.dumps(
            {"type": "completion", "session_id": "R6-S1-EL", "staff_id": STAFF_ID, "occurred_at": "2024-06-03T10:15:00+09:00"}
        ).encode()
        delivered = await training.post(
            "/webhooks/elearning", content=body, headers=sign_webhook(settings.webhook_secret_list[0], body)
        )
        assert delivered.status_code == 200, delivered.text

        async def projected() -> list[ReadableSpan]:
            return _spans(exporter, SpanKind.CONSUMER, "progression.StageCompleted.v1")

        await _eventually(projected, "reporting to consume StageCompleted")
        assert (await plan_cell())["completed"] == 1

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}

    def ancestors(span: ReadableSpan) -> list[ReadableSpan]:
        chain = [span]
        while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
            chain.append(by_id[chain[-1].parent.span_id])
        return chain

    webhook = [span for span in spans if span.kind == SpanKind.SERVER and "/webhooks/elearning" in span.name]
    assert len(webhook) == 1, [span.name for span in spans]
    trace_id = webhook[0].context.trace_id

    session_published = _spans(exporter, SpanKind.PRODUCER, "training.SessionCompleted.v1")
    session_consumed = _spans(exporter, SpanKind.CONSUMER, "training.SessionCompleted.v1")
    stage_published = _spans(exporter, SpanKind.PRODUCER, "progression.StageCompleted.v1")
    stage_consumed = _spans(exporter, SpanKind.CONSUMER, "progression.StageCompleted.v1")
    assert len(session_published) == 1, "training's relay published SessionCompleted once"
    assert len(session_consumed) == 2, "progression and reporting each consumed it"
    assert len(stage_published) == 1, "progression's relay published its decision once"
    assert len(stage_consumed) == 1, "reporting projected it"

    involved = [*webhook, *session_published, *session_consumed, *stage_published, *stage_consumed]
    assert {span.context.trace_id for span in involved} == {trace_id}, "one trace"
    # And one tree: reporting's projection descends, through progression's decision, from the request.
    chain = ancestors(stage_consumed[0])
    assert chain[-1] is webhook[0], [span.name for span in chain]
    # (The middleware's "create" span carries the message's context; its "publish" span is a child of it.)
    path = [(span.kind, _routing_key(span)) for span in chain]
    assert path.index((SpanKind.CONSUMER, "progression.StageCompleted.v1")) == 0, path
    assert (SpanKind.PRODUCER, "progression.StageCompleted.v1") in path, "progression's relay published it"
    assert (SpanKind.CONSUMER, "training.SessionCompleted.v1") in path, "in progression's consumption"
    assert (SpanKind.PRODUCER, "training.SessionCompleted.v1") in path, "of what training's relay published"
    assert {stage_published[0].parent.span_id, session_published[0].parent.span_id} <= {  # type: ignore[union-attr]
        span.context.span_id for span in chain
    }
