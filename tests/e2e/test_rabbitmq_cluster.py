"""The four services on a private 3-node RabbitMQ cluster, with the node leading the consumer queues
killed while completions flow (issue 13).

The services are given the three nodes' addresses (DX_AMQP_URL) and replicate each quorum queue to all
three (DX_QUORUM_INITIAL_GROUP_SIZE=3). Completions are posted as a steady stream; a third of the way in,
the node that leads the most consumer queues is SIGKILLed while they are being posted and relayed, and
the rest follow while the services fail over. Then: every accepted completion is reflected exactly once
(plan report, reporting's event log, progression's decisions), no dead-letter queue holds anything, and
every service is ready again on the surviving nodes. The figures are written to test-artifacts/rabbitmq-cluster-figures.json.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dx_shared.bus import CONSUMER_QUEUES
from dx_shared.settings import Settings
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster, server_scripts
from tests.support.system import SERVICES, RunningSystem, running_system
from tests.support.webhooks import sign_webhook

# The portal talks to the services over HTTP only; these four hold broker connections.
ON_THE_BUS = ("nomination", "training", "progression", "reporting")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        server_scripts() is None,
        reason="no RabbitMQ server scripts in /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin: "
        "a private cluster cannot be started on this machine",
    ),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FISCAL_YEAR = 2025
SESSION = "R7-S1-EL-CLUSTER"
PEOPLE = [f"27{n:05d}" for n in range(1, 81)]


@pytest.fixture
def cluster() -> Iterator[RabbitCluster]:
    with rabbit_cluster(3, keep_logs=ARTIFACTS / "e2e-cluster-logs" / "rabbitmq") as running:
        yield running


@pytest.fixture
def system(settings: Settings, cluster: RabbitCluster) -> Iterator[RunningSystem]:
    on_cluster = settings.model_copy(
        update={
            "amqp_url": " ".join(cluster.urls),
            "quorum_initial_group_size": 3,
            "broker_reconnect_interval": 1.0,
        }
    )
    with running_system(on_cluster, ARTIFACTS / "e2e-cluster-logs") as running:
        yield running


async def _prepare(system: RunningSystem, http: httpx.AsyncClient) -> None:
    departments = "所属コード,所属名,部局\n100100,DX推進課,企画政策部\n".encode("cp932")
    roster = ("職員番号,氏名,所属コード\n" + "".join(f"{p},職員 {p},100100\n" for p in PEOPLE)).encode("cp932")
    for path, body in (("departments", departments), ("staff", roster)):
        response = await http.post(
            system.url("nomination", f"/api/v1/{path}/import"),
            params={"fiscal_year": FISCAL_YEAR},
            content=body,
            headers={"content-type": "text/csv"},
        )
        assert response.status_code == 200, response.text
    session = {
        "session_id": SESSION,
        "fiscal_year": FISCAL_YEAR,
        "method": "e_learning",
        "audience": "promoter",
        "stage": 1,
        "title": "ステージ1 e-ラーニング",
    }
    assert (await http.post(system.url("training", "/api/v1/sessions"), json=session)).status_code == 201
    curriculum = await http.put(
        system.url("training", f"/api/v1/curricula/{FISCAL_YEAR}/1"), json={"session_ids": [SESSION]}
    )
    assert curriculum.status_code == 200, curriculum.text

    async def nominate(person: str) -> None:
        body = {"staff_id": person, "fiscal_year": FISCAL_YEAR, "slot": "self"}
        response = await http.post(system.url("nomination", "/api/v1/nominations"), json=body)
        assert response.status_code == 201, response.text

    await asyncio.gather(*(nominate(person) for person in PEOPLE))


async def _complete(
    system: RunningSystem, http: httpx.AsyncClient, people: list[str], accepted: list[str], milestone: asyncio.Event
) -> None:
    """Posts one signed completion per person, a few at a time, adding to `accepted` each one answered 200;
    sets `milestone` when a third of them are accepted."""
    gate = asyncio.Semaphore(2)

    async def one(person: str) -> None:
        body = json.dumps(
            {
                "type": "completion",
                "session_id": SESSION,
                "staff_id": person,
                "occurred_at": "2025-07-01T10:00:00+09:00",
            }
        ).encode()
        headers = sign_webhook(system.settings.webhook_secret_list[0], body, msg_id=f"msg_cluster_{person}")
        async with gate:
            response = await http.post(system.url("training", "/webhooks/elearning"), content=body, headers=headers)
            await asyncio.sleep(0.1)  # a steady stream, so that the kill lands while messages are in flight
        if response.status_code == 200:
            accepted.append(person)
            if len(accepted) >= len(people) // 3:
                milestone.set()

    await asyncio.gather(*(one(person) for person in people))


async def _plan_cell(system: RunningSystem, http: httpx.AsyncClient) -> dict[str, Any]:
    plan = (
        await http.get(
            system.url("reporting", "/api/v1/reports/plan"), params={"from": FISCAL_YEAR, "to": FISCAL_YEAR}
        )
    ).json()
    stage: dict[str, Any] = next(row for row in plan["stages"] if row["stage"] == 1)
    cell: dict[str, Any] = stage["cells"][0]
    return cell


async def _readiness(system: RunningSystem, http: httpx.AsyncClient) -> dict[str, str]:
    states: dict[str, str] = {}
    for service in SERVICES:
        try:
            states[service] = (await http.get(system.url(service, "/readyz"))).json()["status"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            states[service] = type(exc).__name__
    return states


async def _count_by_subject(database_url: str, sql: str) -> collections.Counter[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return collections.Counter(row["subject"] for row in await conn.fetch(sql))
    finally:
        await conn.close()


async def test_killing_the_node_that_leads_the_consumer_queues_loses_and_duplicates_nothing(
    system: RunningSystem, cluster: RabbitCluster
) -> None:
    settings = system.settings
    consumer_queues = [settings.queue_prefix + queue for queue in CONSUMER_QUEUES]
    async with system.client(timeout=60) as http:
        await _prepare(system, http)

        leaders = await asyncio.to_thread(cluster.queue_leaders)
        led = collections.Counter(leaders[queue] for queue in consumer_queues)
        assert sum(led.values()) == len(consumer_queues), f"every consumer queue is a quorum queue: {leaders}"
        victim = cluster.node_named(led.most_common(1)[0][0])

        connected_before = await asyncio.to_thread(cluster.connections_by_node)
        accepted: list[str] = []
        a_third_in = asyncio.Event()
        posting = asyncio.create_task(_complete(system, http, PEOPLE, accepted, a_third_in))
        await asyncio.wait_for(a_third_in.wait(), timeout=120)
        killed_at = time.monotonic()
        accepted_before_kill = len(accepted)
        await asyncio.to_thread(cluster.kill, victim)  # while completions are being posted and relayed
        await posting

        deadline = killed_at + 180
        while True:
            cell = await _plan_cell(system, http)
            if cell["entered"] == len(PEOPLE) and cell["completed"] == len(accepted):
                break
            if time.monotonic() > deadline:
                diagnostics = await asyncio.to_thread(cluster.diagnostics)
                raise AssertionError(f"the plan report shows {cell} 180 s after the kill\n{diagnostics}")
            await asyncio.sleep(0.5)
        recovered_in = time.monotonic() - killed_at

        while (states := await _readiness(system, http)) != dict.fromkeys(SERVICES, "ready"):
            assert time.monotonic() < deadline, f"services not ready again: {states}"
            await asyncio.sleep(0.5)

    connected_after = await asyncio.to_thread(cluster.connections_by_node)
    leaders_after = await asyncio.to_thread(cluster.queue_leaders)
    depths = await asyncio.to_thread(cluster.queue_messages)
    dead_letters = {name: count for name, count in depths.items() if name.endswith(".dlq")}
    session_completed = await _count_by_subject(
        settings.database_url,
        "SELECT body->>'subject' AS subject FROM reporting.event_log WHERE event_type LIKE '%.SessionCompleted.v1'",
    )
    stage_completed = await _count_by_subject(
        settings.database_url,
        "SELECT convert_from(body, 'UTF8')::jsonb->>'subject' AS subject FROM progression.outbox"
        " WHERE routing_key = 'progression.StageCompleted.v1'",
    )
    figures = {
        "nodes": len(cluster.nodes),
        "killed_node": victim.name,
        "consumer_queues_it_led": led[victim.name],
        "completions_posted": len(PEOPLE),
        "completions_accepted": len(accepted),
        "accepted_before_the_kill": accepted_before_kill,
        "seconds_from_kill_to_every_completion_reported": round(recovered_in, 1),
        "reported_completed": cell["completed"],
        "lost": len(set(accepted) - set(session_completed)),
        "duplicated_in_reporting": sum(count - 1 for count in session_completed.values() if count > 1),
        "stage_decisions_duplicated": sum(count - 1 for count in stage_completed.values() if count > 1),
        "dead_lettered": sum(dead_letters.values()),
        "connections_per_node_before_kill": connected_before,
        "connections_per_node_after": connected_after,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "rabbitmq-cluster-figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))

    assert len(accepted) == len(PEOPLE), "training accepts completions whatever the broker does"
    assert (cell["entered"], cell["completed"], cell["new"]) == (len(PEOPLE), len(PEOPLE), len(PEOPLE)), cell
    assert session_completed == collections.Counter(accepted), "each accepted completion reached reporting once"
    assert stage_completed == collections.Counter(accepted), "progression completed stage 1 once per person"
    assert len(dead_letters) == len(consumer_queues) and set(dead_letters.values()) == {0}, dead_letters
    assert victim.name not in set(leaders_after.values()), "the queues are led by surviving nodes"
    assert connected_before.get(victim.name, 0) >= len(ON_THE_BUS), "the services were connected to the killed node"
    assert sum(connected_after.values()) >= len(ON_THE_BUS), "and are connected to the surviving nodes now"
    assert system.all_running(), "no service process died with the node"
