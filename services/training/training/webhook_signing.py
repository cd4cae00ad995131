"""Signs a delivery as the e-learning platform would (Standard Webhooks), for tests and the demo loader."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from standardwebhooks import Webhook


def sign(secret: str, body: bytes, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for `body` (UTF-8)."""
    seconds = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(
        msg_id=msg_id, timestamp=datetime.fromtimestamp(seconds, tz=UTC), data=body.decode("utf-8")
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(seconds), "webhook-signature": signature}
