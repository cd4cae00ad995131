"""Standard Webhooks signing for tests (the e-learning platform's side of the webhook)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def sign_webhook(secret: str, body: bytes, msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(timestamp if timestamp is not None else int(time.time()), tz=UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode("utf-8", errors="surrogateescape"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
