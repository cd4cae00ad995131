"""The list of consumer queues that operations watch is the list the services really consume from."""

from __future__ import annotations

import importlib

from dx_shared.bus import CONSUMER_QUEUES

SERVICES = ("nomination", "training", "progression", "reporting")


def test_every_service_queue_is_in_the_shared_list_of_consumer_queues() -> None:
    declared = set()
    for service in SERVICES:
        handlers = importlib.import_module(f"{service}.handlers")
        declared.add(f"{service}.{handlers.subscription.purpose}")
    assert declared == set(CONSUMER_QUEUES)
