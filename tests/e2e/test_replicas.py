"""Every service running as two replicas at once (CONTRACT.md): competing consumers and competing outbox
relays still give each decision exactly once, and the reports count every person once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dx_shared.settings import Settings
from tests.support import BusProbe
from tests.support.system import SERVICES, RunningSystem, running_system
from tests.support.webhooks import sign_webhook

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PEOPLE = [f"25{n:05d}" for n in range(1, 41)]


@pytest.fixture
def system(settings: Settings) -> Iterator[RunningSystem]:
    with running_system(settings, ARTIFACTS / "e2e-replica-logs", replicas=dict.fromkeys(SERVICES, 2)) as running:
        yield running


async def test_two_replicas_of_every_service_count_every_person_once(system: RunningSystem) -> None:
    async with system.client(timeout=60) as http, BusProbe(system.settings) as probe:
        departments = "所属コード,所属名,部局\n100100,DX推進課,企画政策部\n".encode("cp932")
        roster = ("職員番号,氏名,所属コード\n" + "".join(f"{p},職員 {p},100100\n" for p in PEOPLE)).encode("cp932")
        for path, body in (("departments", departments), ("staff", roster)):
            response = await http.post(
                system.url("nomination", f"/api/v1/{path}/import"),
                params={"fiscal_year": 2025},
                content=body,
                headers={"content-type": "text/csv"},
            )
            assert response.status_code == 200, response.text
        session = {
            "session_id": "R7-S1-EL",
            "fiscal_year": 2025,
            "method": "e_learning",
            "audience": "promoter",
            "stage": 1,
            "title": "ステージ1 e-ラーニング",
        }
        assert (await http.post(system.url("training", "/api/v1/sessions"), json=session)).status_code == 201
        curriculum = await http.put(
            system.url("training", "/api/v1/curricula/2025/1"), json={"session_ids": ["R7-S1-EL"]}
        )
        assert curriculum.status_code == 200

        async def nominate(person: str) -> None:
            body = {"staff_id": person, "fiscal_year": 2025, "slot": "self"}
            response = await http.post(system.url("nomination", "/api/v1/nominations"), json=body)
            assert response.status_code == 201, response.text

        async def complete(person: str) -> None:
            body = json.dumps(
                {
                    "type": "completion",
                    "session_id": "R7-S1-EL",
                    "staff_id": person,
                    "occurred_at": "2025-07-01T10:00:00+09:00",
                }
            ).encode()
            headers = sign_webhook(system.settings.webhook_secret_list[0], body, msg_id=f"msg_{person}")
            for _copy in range(2):
                response = await http.post(system.url("training", "/webhooks/elearning"), content=body, headers=headers)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(nominate(person) for person in PEOPLE))
        await asyncio.gather(*(complete(person) for person in PEOPLE))

        deadline = time.monotonic() + 60
        while True:
            plan = (
                await http.get(system.url("reporting", "/api/v1/reports/plan"), params={"from": 2025, "to": 2025})
            ).json()
            cell = next(row for row in plan["stages"] if row["stage"] == 1)["cells"][0]
            if cell["entered"] == len(PEOPLE) and cell["completed"] == len(PEOPLE):
                break
            assert time.monotonic() < deadline, f"the plan report shows {cell}"
            await asyncio.sleep(0.5)
        await probe.quiet(2.0)

    for event_name in ("TraineeNominated", "SessionCompleted", "StageAdvanced", "StageCompleted"):
        events = probe.of_type(event_name)
        assert sorted(event.subject for event in events) == sorted(PEOPLE), f"{event_name}: one per person"
        assert len({event.id for event in events}) == len(events), f"{event_name}: no event published twice"
    assert cell == {"fiscal_year": 2025, "plan": None, "entered": 40, "completed": 40, "new": 40}
    assert len(system.processes) == 2 * len(SERVICES) and system.all_running(), "both replicas of every service stayed up"
