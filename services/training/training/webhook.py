"""Standard Webhooks verification of an e-learning delivery, over the raw body, before anything is parsed.

Every configured secret is tried, so the platform can rotate its secret while old deliveries are still
being retried. Each refusal is a value with its HTTP status and rule code: missing or garbled headers are
the sender's mistake (400), a signature that matches no secret or a timestamp outside ±5 minutes is
refused as unauthenticated (401). Nothing raised by the verification library escapes as anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

TOLERANCE = timedelta(minutes=5)
MIN_SECRET_BYTES = 24
SECRET_PREFIX = "whsec_"
MAX_ID_LENGTH = 256
MAX_SIGNATURE_HEADER_LENGTH = 4096
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


class WebhookRefused(Exception):
    """A delivery that is not accepted; nothing about it is recorded."""

    status = 400
    code = "WEBHOOK_REFUSED"
    title_en = "The delivery was refused"
    title_ja = "受信を拒否しました"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.code}: {detail}")
        self.detail = detail


class HeadersMissing(WebhookRefused):
    code = "WEBHOOK_HEADERS_MISSING"
    title_en = "webhook-id, webhook-timestamp and webhook-signature are required"
    title_ja = "webhook-id・webhook-timestamp・webhook-signature ヘッダーが必要です"


class HeadersMalformed(WebhookRefused):
    code = "WEBHOOK_HEADERS_MALFORMED"
    title_en = "The webhook headers are not well-formed"
    title_ja = "webhook ヘッダーの形式が正しくありません"


class TimestampOutOfTolerance(WebhookRefused):
    status = 401
    code = "WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE"
    title_en = "The webhook timestamp is more than 5 minutes away from now"
    title_ja = "webhook のタイムスタンプが現在時刻から5分以上ずれています"


class SignatureInvalid(WebhookRefused):
    status = 401
    code = "WEBHOOK_SIGNATURE_INVALID"
    title_en = "The signature matches none of the configured secrets"
    title_ja = "署名が一致しません"


class BodyNotUtf8(WebhookRefused):
    code = "BODY_NOT_UTF8"
    title_en = "The body is not UTF-8"
    title_ja = "本文が UTF-8 ではありません"


class MalformedJson(WebhookRefused):
    code = "MALFORMED_JSON"
    title_en = "The body is not valid JSON"
    title_ja = "本文が正しい JSON ではありません"


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its id (the sender's retry key), when it was sent, and its text."""

    webhook_id: str
    sent_at: datetime
    text: str


class WebhookVerifier:
    """Verifies deliveries against every configured `whsec_` secret (old and new during rotation)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._webhooks: list[Webhook] = []
        self.unusable_secrets = 0
        for secret in secrets:
            try:
                self._webhooks.append(Webhook(secret))
            except Exception:
                self.unusable_secrets += 1

    @property
    def usable_secrets(self) -> int:
        return len(self._webhooks)

    def verify(self, body: bytes, headers: Mapping[str, str], now: datetime | None = None) -> Delivery:
        webhook_id, timestamp, signature = _well_formed_headers(headers)
        moment = now or datetime.now(UTC)
        # Compared as seconds first: a far-away timestamp (year 10000) cannot even become a datetime.
        if abs(moment.timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
            raise TimestampOutOfTolerance(f"sent at {timestamp} seconds since the epoch")
        sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            # The signed content is text (the reference library cannot even compute it), and no
            # such body could be JSON: refused as malformed before the signature is checked.
            raise BodyNotUtf8(f"invalid byte at {exc.start}") from None
        signed_headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
        for webhook in self._webhooks:
            try:
                webhook.verify(text, signed_headers, json_parse=False)
            except Exception:
                continue
            return Delivery(webhook_id=webhook_id, sent_at=sent_at, text=text)
        raise SignatureInvalid("no configured secret produced this signature")


class WebhookSecretsRefused(RuntimeError):
    """The configured secrets cannot protect the webhook: the service does not start. The message never
    holds a secret."""


def secret_problems(secrets: Sequence[str], known: Sequence[str] = ()) -> list[str]:
    """Why each configured secret is unfit (pure): not `whsec_<base64>`, fewer than 24 bytes, or one
    published in this repository (`known`). Secrets are named by position, never shown."""
    problems = []
    for position, secret in enumerate(secrets, start=1):
        if not secret.startswith(SECRET_PREFIX):
            problems.append(f"secret {position} does not start with {SECRET_PREFIX}")
            continue
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"secret {position} is not {SECRET_PREFIX}<base64>")
            continue
        if len(key) < MIN_SECRET_BYTES:
            problems.append(
                f"secret {position} holds {len(key)} bytes; at least {MIN_SECRET_BYTES} random bytes are required"
            )
        elif secret in known:
            problems.append(f"secret {position} is the demo secret published in the repository")
    return problems


def check_secrets(secrets: Sequence[str], *, demo_mode: bool, demo_secret: str) -> None:
    """Refuses a webhook without a secret, or with an unfit one; in demo mode the demo secret is allowed."""
    if not secrets:
        raise WebhookSecretsRefused(
            "DX_WEBHOOK_SECRETS is not set: give the e-learning platform's whsec_ secret(s)"
            " (DX_DEMO_MODE=1 runs on the published demo secret, for a demonstration only)"
        )
    problems = secret_problems(secrets, known=() if demo_mode else (demo_secret,))
    if problems:
        raise WebhookSecretsRefused("DX_WEBHOOK_SECRETS refused: " + "; ".join(problems))


def _well_formed_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    lowered = {key.lower(): value for key, value in headers.items()}
    missing = [name for name in HEADERS if not lowered.get(name, "").strip()]
    if missing:
        raise HeadersMissing(f"missing {', '.join(missing)}")
    webhook_id, timestamp, signature = (lowered[name].strip() for name in HEADERS)
    if len(webhook_id) > MAX_ID_LENGTH or not _PRINTABLE.match(webhook_id):
        raise HeadersMalformed("webhook-id must be 1-256 printable ASCII characters")
    if not _TIMESTAMP.match(timestamp):
        raise HeadersMalformed("webhook-timestamp must be integer seconds since the epoch")
    if len(signature) > MAX_SIGNATURE_HEADER_LENGTH:
        raise HeadersMalformed("webhook-signature is too long")
    for entry in signature.split():
        version, comma, value = entry.partition(",")
        if not comma or not version or "," in value:
            raise HeadersMalformed("webhook-signature entries must read <version>,<base64>")
        if version == "v1" and not _is_base64(value):
            raise HeadersMalformed("a v1 signature must be base64")
    return webhook_id, timestamp, signature


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def parse_json(delivery: Delivery) -> object:
    try:
        return json.loads(delivery.text)
    except (ValueError, RecursionError) as exc:
        raise MalformedJson(str(exc)[:200]) from None
