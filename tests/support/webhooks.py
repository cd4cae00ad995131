"""Standard Webhooks signing for tests: the e-learning platform's side, via training's own helper."""

from __future__ import annotations

import uuid

from training.webhook_signing import sign


def sign_webhook(
    secret: str, body: bytes, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    headers = sign(secret, body, msg_id or f"msg_{uuid.uuid4().hex}", timestamp)
    return {**headers, "content-type": "application/json"}
