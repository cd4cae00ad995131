"""The broker permissions each service gets (pure): its own queues, the two exchanges, its own keys."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from dx_shared.settings import Settings
from dx_tools.broker_users import known_passwords, plan, read_env_file, service_url, write_env_file


def _matches(pattern: str, name: str) -> bool:
    # RabbitMQ matches permissions as unanchored regular expressions (re:run): anchors are in the pattern.
    return re.search(pattern, name) is not None


def test_each_service_configures_only_its_own_queues_and_the_exchanges() -> None:
    users = {user.service: user for user in plan(Settings())}
    assert {user.username for user in users.values()} == {"dx-nomination", "dx-training", "dx-progression", "dx-reporting"}
    training = users["training"]
    for allowed in ("training.rosters", "training.rosters.dlq", "dx.events", "dx.dead-letter"):
        assert _matches(training.configure, allowed), allowed
        assert _matches(training.read, allowed) and _matches(training.write, allowed)
    for refused in ("progression.facts", "progression.facts.dlq", "reporting.events", "dx.events.other", "xdx.events",
                    "trainingX.y", "amq.topic"):
        assert not _matches(training.configure, refused), refused
        assert not _matches(training.read, refused), refused


def test_each_service_publishes_only_its_own_routing_keys() -> None:
    users = {user.service: user for user in plan(Settings())}
    assert users["training"].topic_exchange == "dx.events"
    assert _matches(users["training"].topic_write, "training.SessionCompleted.v1")
    assert not _matches(users["training"].topic_write, "nomination.TraineeNominated.v1")
    assert not _matches(users["nomination"].topic_write, "training.SessionCompleted.v1")
    assert not _matches(users["nomination"].topic_write, "nominationx.Evil.v1")


def test_names_follow_the_settings_queue_prefix_and_exchanges() -> None:
    settings = Settings(queue_prefix="t1.", exchange="dx.events.t1", dead_letter_exchange="dx.dead-letter.t1")
    user = next(user for user in plan(settings, "ci-") if user.service == "progression")
    assert user.username == "ci-progression"
    assert _matches(user.configure, "t1.progression.facts") and not _matches(user.configure, "progression.facts")
    assert _matches(user.write, "dx.events.t1") and not _matches(user.write, "dx.events")
    assert user.topic_exchange == "dx.events.t1"


def test_a_service_url_carries_the_account_and_the_vhost() -> None:
    url = service_url("amqp://guest:guest@mq.example:5673/old", "dx-training", "p@ss/word", "/")
    parts = urlsplit(url)
    assert (parts.username, parts.hostname, parts.port, parts.path) == ("dx-training", "mq.example", 5673, "/%2F")
    assert parts.password == "p%40ss%2Fword"


def test_passwords_come_from_the_environment_then_the_earlier_file(tmp_path: Path) -> None:
    path = tmp_path / "broker-users.env"
    write_env_file(path, {"training": service_url("amqp://h/", "dx-training", "earlier", "v")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = known_passwords(read_env_file(path), {"DX_NOMINATION_AMQP_PASSWORD": "given"})
    assert found == {"nomination": "given", "training": "earlier"}
