"""The public event contract (CONTRACT.md): names derived in one place, CloudEvents read strictly, extras tolerated."""

from __future__ import annotations

import json

import pytest

from dx_shared import context
from dx_shared import contracts as c
from dx_shared.envelope import MalformedEvent, deterministic_id, new_event, parse_event


def nominated() -> c.TraineeNominated:
    return c.TraineeNominated(
        nomination_id="n1", staff_id="1000001", department_code="100100", fiscal_year=2024, slot=c.Slot.RECOMMENDED
    )


def test_routing_keys_and_types_follow_the_contract_for_every_event() -> None:
    for model in c.ALL_EVENTS:
        assert model.routing_key() == f"{model.PRODUCER}.{model.EVENT_NAME}.v1"
        assert model.ce_type() == f"jp.aomori.dx.{model.EVENT_NAME}.v1"
        assert c.by_type(model.ce_type()) is model
        assert c.by_routing_key(model.routing_key()) is model
    assert c.by_type("jp.aomori.dx.SomethingNew.v1") is None


def test_a_new_event_is_a_cloudevent_with_the_request_correlation_and_causation() -> None:
    tokens = context.bind("corr-1", "req-1")
    try:
        event = new_event(nominated(), subject="1000001")
    finally:
        context.reset(tokens)
    document = json.loads(event.to_bytes())
    assert document["specversion"] == "1.0"
    assert document["source"] == "/dx/nomination"
    assert document["type"] == "jp.aomori.dx.TraineeNominated.v1"
    assert document["subject"] == "1000001"
    assert document["datacontenttype"] == "application/json"
    assert (document["correlationid"], document["causationid"]) == ("corr-1", "req-1")
    assert parse_event(event.to_bytes()).payload() == nominated()


def test_unknown_fields_and_extensions_are_tolerated() -> None:
    event = new_event(nominated())
    document = json.loads(event.to_bytes())
    document["data"]["from_the_future"] = 1
    document["newextension"] = "x"
    payload = parse_event(json.dumps(document).encode()).payload()
    assert isinstance(payload, c.TraineeNominated)
    assert payload.staff_id == "1000001"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"specversion": "0.3", "id": "x", "source": "/dx/x", "type": "t", "time": "2024-04-01T00:00:00Z"}',
        b'{"specversion": "1.0", "source": "/dx/x", "type": "t", "time": "2024-04-01T00:00:00Z"}',
    ],
)
def test_what_is_not_a_cloudevent_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_data_that_does_not_fit_its_type_is_malformed() -> None:
    document = json.loads(new_event(nominated()).to_bytes())
    document["data"]["fiscal_year"] = "not a year"
    with pytest.raises(MalformedEvent):
        parse_event(json.dumps(document).encode()).payload()


def test_event_ids_derived_from_the_sources_own_ids_are_stable() -> None:
    assert deterministic_id("webhook", "msg_1") == deterministic_id("webhook", "msg_1")
    assert deterministic_id("webhook", "msg_1") != deterministic_id("webhook", "msg_2")
