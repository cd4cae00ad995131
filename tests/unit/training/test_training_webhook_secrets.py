"""Which webhook secrets the training service accepts, and the digest that tells a retry from a reuse."""

from __future__ import annotations

import base64
import json

import pytest

from training.statements import payload_digest
from training.webhook import MIN_SECRET_BYTES, WebhookSecretsRefused, check_secrets, secret_problems

DEMO = "whsec_" + base64.b64encode(b"a-demo-secret-everyone-can-read").decode()


def secret(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


def test_a_secret_of_at_least_24_bytes_is_fit() -> None:
    assert secret_problems([secret(MIN_SECRET_BYTES), secret(64)]) == []


def test_unfit_secrets_are_named_by_position_never_shown() -> None:
    unfit = [secret(23), "plain-text-secret", "whsec_%%%", DEMO]
    problems = secret_problems(unfit, known=[DEMO])
    assert problems == [
        "secret 1 holds 23 bytes; at least 24 random bytes are required",
        "secret 2 does not start with whsec_",
        "secret 3 is not whsec_<base64>",
        "secret 4 is the demo secret published in the repository",
    ]
    assert not any(value in problem for value in unfit for problem in problems)


def test_no_secret_refuses_to_start_outside_demo_mode_and_the_demo_secret_only_in_it() -> None:
    with pytest.raises(WebhookSecretsRefused, match="not set"):
        check_secrets([], demo_mode=False, demo_secret=DEMO)
    with pytest.raises(WebhookSecretsRefused, match="demo secret"):
        check_secrets([DEMO], demo_mode=False, demo_secret=DEMO)
    check_secrets([DEMO], demo_mode=True, demo_secret=DEMO)


def test_the_digest_ignores_formatting_and_key_order_but_not_content() -> None:
    document = {"b": [1, 2, {"z": "青森", "a": None}], "a": 1.5}
    reformatted = json.loads(json.dumps(document, indent=3, sort_keys=True))
    assert payload_digest(document) == payload_digest(reformatted)
    assert payload_digest(document) != payload_digest({**document, "a": 1.6})
    assert len(payload_digest([])) == 64
