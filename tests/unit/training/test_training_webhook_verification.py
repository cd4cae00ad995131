"""Standard Webhooks verification over the raw body, with every configured secret."""

from __future__ import annotations

import time

import pytest

from training.webhook import (
    BodyNotUtf8,
    HeadersMalformed,
    HeadersMissing,
    MalformedJson,
    SignatureInvalid,
    TimestampOutOfTolerance,
    WebhookVerifier,
    parse_json,
)
from training.webhook_signing import sign

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24tdGVzdA=="
BODY = b'{"type":"completion"}'


def test_a_delivery_signed_with_the_secret_verifies() -> None:
    delivery = WebhookVerifier([OLD]).verify(BODY, sign(OLD, BODY, "msg_1"))
    assert (delivery.webhook_id, delivery.text) == ("msg_1", BODY.decode())


@pytest.mark.parametrize("secret", [OLD, NEW])
def test_during_rotation_either_secret_verifies(secret: str) -> None:
    assert WebhookVerifier([OLD, NEW]).verify(BODY, sign(secret, BODY, "msg_1")).webhook_id == "msg_1"


def test_a_signature_by_a_retired_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        WebhookVerifier([NEW]).verify(BODY, sign(OLD, BODY, "msg_1"))


def test_a_body_changed_after_signing_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        WebhookVerifier([OLD]).verify(BODY + b" ", sign(OLD, BODY, "msg_1"))


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_a_bad_request(drop: str) -> None:
    headers = sign(OLD, BODY, "msg_1")
    del headers[drop]
    with pytest.raises(HeadersMissing):
        WebhookVerifier([OLD]).verify(BODY, headers)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-timestamp", "yesterday"),
        ("webhook-timestamp", "1.5e9"),
        ("webhook-signature", "v1"),
        ("webhook-signature", "v1,not*base64"),
        ("webhook-signature", "v1,a,b"),
        ("webhook-id", "id with spaces"),
    ],
)
def test_garbled_headers_are_a_bad_request(header: str, value: str) -> None:
    headers = {**sign(OLD, BODY, "msg_1"), header: value}
    with pytest.raises(HeadersMalformed):
        WebhookVerifier([OLD]).verify(BODY, headers)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_five_minutes_away_is_refused(offset: int) -> None:
    headers = sign(OLD, BODY, "msg_1", timestamp=int(time.time()) + offset)
    with pytest.raises(TimestampOutOfTolerance):
        WebhookVerifier([OLD]).verify(BODY, headers)


@pytest.mark.parametrize("timestamp", ["999999999999", "0"])
def test_a_timestamp_beyond_the_calendar_is_refused_as_out_of_tolerance(timestamp: str) -> None:
    headers = {**sign(OLD, BODY, "msg_1"), "webhook-timestamp": timestamp}
    with pytest.raises(TimestampOutOfTolerance):
        WebhookVerifier([OLD]).verify(BODY, headers)


def test_a_timestamp_within_five_minutes_is_accepted() -> None:
    headers = sign(OLD, BODY, "msg_1", timestamp=int(time.time()) - 290)
    assert WebhookVerifier([OLD]).verify(BODY, headers).webhook_id == "msg_1"


def test_a_body_that_is_not_utf8_is_a_bad_request() -> None:
    with pytest.raises(BodyNotUtf8):
        WebhookVerifier([OLD]).verify(b"\xff\xfe{}", sign(OLD, b"{}", "msg_1"))


def test_an_unusable_configured_secret_is_skipped_not_fatal() -> None:
    verifier = WebhookVerifier(["whsec_", OLD])
    assert (verifier.usable_secrets, verifier.unusable_secrets) == (1, 1)
    assert verifier.verify(BODY, sign(OLD, BODY, "msg_1")).webhook_id == "msg_1"


@pytest.mark.parametrize("text", [b"{", b"[" * 100_000, b"nope"])
def test_malformed_json_is_a_bad_request(text: bytes) -> None:
    delivery = WebhookVerifier([OLD]).verify(text, sign(OLD, text, "msg_1"))
    with pytest.raises(MalformedJson):
        parse_json(delivery)
