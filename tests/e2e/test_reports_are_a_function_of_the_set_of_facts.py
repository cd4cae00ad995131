"""P8 end to end: every report is a function of the *set* of facts, not of their order or repetition.

A random history of facts — department lists and rosters over several fiscal years with people moving
between departments, recommended and self nominations over several years, withdrawals, sessions,
curricula (some revised during the year), completions, waivers and closings — is fed twice, in two
different random orders with random duplicates, into two separate pipelines (each a real progression
and a real reporting service on its own database and its own exchange and queues of the real broker).
The facts are published as the CloudEvents the nomination and training services would publish; the
closings go through progression's HTTP close, interleaved with them. Progression's own decisions flow
into reporting over the bus. Once both pipelines are quiet, every report document — plan, departments,
baseline and sessions per year, every trainee report, and every progression standing — must be
identical between the two runs.

The one field left out of the comparison is a standing year's `decision_event_id`: it names *which*
announcement of the decision stands, and how many announcements (corrections, retractions) a decision
took to settle legitimately depends on the order the facts came in. What the decision says is compared.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dx_shared import contracts as c
from dx_shared.calendar import JST
from dx_shared.envelope import CloudEvent, deterministic_id, new_event
from dx_shared.settings import Settings
from progression.handlers import subscription as progression_subscription
from progression.main import create_app as create_progression
from reporting.main import create_app as create_reporting
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.support.bus import publish_events
from tests.support.identity import current_provider
from tests.support.idp import Idp
from tests.support.infra import Servers, create_database, drop_database, unique_name
from tests.support.services import pool_of, running_app

pytestmark = pytest.mark.e2e

FISCAL_YEARS = (2022, 2023, 2024, 2025)  # all ended, so every one of them may be closed
STAFF = tuple(f"90000{n}" for n in range(1, 7))
DEPARTMENTS = (("0101", "DX推進課", "企画政策部"), ("0102", "行政経営課", "総務部"), ("0201", "人事課", "総務部"),
               ("0301", "県民生活文化課", "環境エネルギー部"))
PROMOTER_STAGES = (1, 2, 3, 4)
PROGRESSION_FACTS = frozenset(progression_subscription.events)


def moment(fiscal_year: int, day: int) -> datetime:
    """`day` days after 1 April 09:00 JST of the fiscal year (0–360)."""
    return datetime(fiscal_year, 4, 1, 9, tzinfo=JST) + timedelta(days=day)


# ---- a random history -----------------------------------------------------------------------------


class History:
    """The facts of one example: events to publish, and fiscal years to close over HTTP."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.closings: list[int] = []

    def __repr__(self) -> str:
        kinds = Counter(event.type.removeprefix("jp.aomori.dx.").removesuffix(".v1") for event in self.events)
        return f"History({dict(sorted(kinds.items()))}, closings={self.closings})"

    def add(self, event: CloudEvent) -> None:
        self.events.append(event)


def sessions_of(fiscal_year: int) -> list[tuple[str, c.Audience, int | None]]:
    promoter = [(f"{fiscal_year}-s{stage}{part}", c.Audience.PROMOTER, stage)
                for stage in PROMOTER_STAGES for part in "ab"]
    return [*promoter, (f"{fiscal_year}-base", c.Audience.ALL_STAFF, None),
            (f"{fiscal_year}-mgr", c.Audience.MANAGERS, None)]


@st.composite
def histories(draw: st.DrawFn) -> History:
    history = History()
    days = st.integers(min_value=1, max_value=350)
    for fiscal_year in FISCAL_YEARS:
        # The department list of the year (the last department only from the second year on) and its roster.
        departments = DEPARTMENTS if fiscal_year > FISCAL_YEARS[0] else DEPARTMENTS[:-1]
        history.add(new_event(
            c.DepartmentsImported(
                fiscal_year=fiscal_year,
                departments=[c.DepartmentEntry(code=code, name=name, bureau=bureau) for code, name, bureau in departments],
                total=len(departments),
            ),
            event_id=deterministic_id("e2e-departments", fiscal_year),
            time=moment(fiscal_year, 0),
        ))
        roster = {staff_id: draw(st.sampled_from([d[0] for d in departments])) for staff_id in STAFF}
        managers = draw(st.sets(st.sampled_from(STAFF), max_size=2))
        history.add(new_event(
            c.StaffImported(
                fiscal_year=fiscal_year,
                staff=[c.StaffEntry(staff_id=s, department_code=d, is_manager=s in managers) for s, d in roster.items()],
                total=len(roster),
            ),
            event_id=deterministic_id("e2e-roster", fiscal_year),
            time=moment(fiscal_year, 0),
        ))
        # Sessions, and each stage's curriculum: revision 1 from the start, sometimes a second revision
        # (one more session required) published during the year.
        for session_id, audience, stage in sessions_of(fiscal_year):
            history.add(new_event(
                c.SessionScheduled(
                    session_id=session_id, fiscal_year=fiscal_year,
                    method=c.Method.E_LEARNING if audience is not c.Audience.PROMOTER else c.Method.CLASSROOM,
                    audience=audience, stage=stage, title=f"研修 {session_id}",
                    starts_at=moment(fiscal_year, 30), capacity=40,
                ),
                event_id=deterministic_id("e2e-session", session_id),
                time=moment(fiscal_year, 1),
            ))
        for stage in PROMOTER_STAGES:
            history.add(new_event(
                c.CurriculumPublished(fiscal_year=fiscal_year, stage=stage, session_ids=[f"{fiscal_year}-s{stage}a"]),
                event_id=deterministic_id("e2e-curriculum", fiscal_year, stage, 1),
                time=moment(fiscal_year, 1),
            ))
            if draw(st.booleans()):
                history.add(new_event(
                    c.CurriculumPublished(
                        fiscal_year=fiscal_year, stage=stage, revision=2,
                        session_ids=[f"{fiscal_year}-s{stage}a", f"{fiscal_year}-s{stage}b"],
                    ),
                    event_id=deterministic_id("e2e-curriculum", fiscal_year, stage, 2),
                    time=moment(fiscal_year, draw(days)),
                ))
        # Nominations (recommended or self, in the person's department of the year), withdrawals,
        # completions and waivers of promoter sessions of any stage, and of the baseline sessions.
        for staff_id in STAFF:
            slot = draw(st.sampled_from([None, None, c.Slot.SELF, c.Slot.RECOMMENDED]))
            nomination_id = f"n-{staff_id}-{fiscal_year}"
            if slot is not None:
                history.add(new_event(
                    c.TraineeNominated(
                        nomination_id=nomination_id, staff_id=staff_id, department_code=roster[staff_id],
                        fiscal_year=fiscal_year, slot=slot, nominated_at=moment(fiscal_year, 0),
                    ),
                    subject=staff_id, event_id=deterministic_id("e2e-nominated", nomination_id),
                    time=moment(fiscal_year, 0),
                ))
                if draw(st.integers(0, 4)) == 0:
                    withdrawn_at = moment(fiscal_year, draw(days))
                    history.add(new_event(
                        c.NominationWithdrawn(
                            nomination_id=nomination_id, staff_id=staff_id, fiscal_year=fiscal_year,
                            reason="異動のため", department_code=roster[staff_id], slot=slot,
                            withdrawn_at=withdrawn_at,
                        ),
                        subject=staff_id, event_id=deterministic_id("e2e-withdrawn", nomination_id),
                        time=withdrawn_at,
                    ))
            met = draw(st.sets(st.sampled_from([s for s, _, _ in sessions_of(fiscal_year)]), max_size=5))
            for session_id in sorted(met):
                when = moment(fiscal_year, draw(days))
                if draw(st.integers(0, 5)) == 0:
                    history.add(new_event(
                        c.CompletionWaived(
                            waiver_id=f"w-{staff_id}-{session_id}", session_id=session_id, staff_id=staff_id,
                            fiscal_year=fiscal_year, actor="自治研修所", reason="前年度に同等の研修を受講済み",
                            recorded_at=when,
                        ),
                        subject=staff_id, event_id=deterministic_id("e2e-waived", staff_id, session_id), time=when,
                    ))
                else:
                    history.add(new_event(
                        c.SessionCompleted(
                            completion_id=f"c-{staff_id}-{session_id}", session_id=session_id, staff_id=staff_id,
                            fiscal_year=fiscal_year, method=c.Method.E_LEARNING, occurred_at=when,
                            recorded_at=when + timedelta(hours=1), source=c.CompletionSource.WEBHOOK,
                        ),
                        subject=staff_id, event_id=deterministic_id("e2e-completed", staff_id, session_id),
                        time=when + timedelta(hours=1),
                    ))
    history.closings = sorted(draw(st.sets(st.sampled_from(FISCAL_YEARS[:-1]))))
    return history


Item = CloudEvent | int  # an event to publish, or a fiscal year to close over HTTP


def feeding_order(history: History, rng: random.Random) -> list[Item]:
    """Every fact and closing once in a random order, plus random duplicates of facts at random places."""
    items: list[Item] = [*history.events, *history.closings]
    rng.shuffle(items)
    for event in rng.sample(history.events, k=len(history.events) // 5):
        items.insert(rng.randrange(len(items) + 1), event)
    return items


# ---- one pipeline: progression + reporting on their own database and bus names ----------------------


@dataclass
class Pipeline:
    settings: Settings
    progression: httpx.AsyncClient
    reporting: httpx.AsyncClient


@asynccontextmanager
async def pipeline(servers: Servers) -> AsyncIterator[Pipeline]:
    name = unique_name("dx_p8")
    database_url = await create_database(servers.database_url, name)
    tag = unique_name("p8")
    run_settings = Settings(
        database_url=database_url, amqp_url=servers.amqp_url, webhook_secrets=TEST_WEBHOOK_SECRET,
        outbox_poll_interval=0.2, log_json=True, log_level="WARNING",
        exchange=f"dx.events.{tag}", dead_letter_exchange=f"dx.dead-letter.{tag}", queue_prefix=f"{tag}.",
        oidc_issuer=current_provider().issuer, oidc_audience=current_provider().audience,
        progression_metrics_port=0, reporting_metrics_port=0,
    )
    try:
        async with (
            running_app(create_progression, run_settings) as progression,
            running_app(create_reporting, run_settings) as reporting,
        ):
            yield Pipeline(run_settings, progression, reporting)
    finally:
        await drop_database(servers.database_url, name)
        await remove_bus_names(run_settings)


async def remove_bus_names(run_settings: Settings) -> None:
    """Deletes the run's queues and exchanges: quorum queues are not light to leave behind."""
    connection = await aio_pika.connect(run_settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in ("progression.facts", "reporting.events"):
            for name in (queue, f"{queue}.dlq"):
                await channel.queue_delete(run_settings.queue_prefix + name)
        for exchange in (run_settings.exchange, run_settings.dead_letter_exchange):
            await channel.exchange_delete(exchange)


async def feed(run: Pipeline, items: list[Item]) -> None:
    """Publishes runs of consecutive events in one go and closes a year over HTTP where it comes."""
    batch: list[CloudEvent] = []
    for item in items:
        if isinstance(item, CloudEvent):
            batch.append(item)
            continue
        await publish_events(run.settings, batch)
        batch = []
        closed = await run.progression.post(f"/api/v1/fiscal-years/{item}/close", json={"actor": "DX推進課"})
        assert closed.status_code == 201, closed.text
    await publish_events(run.settings, batch)


async def queue_depths(run: Pipeline) -> list[int]:
    connection = await aio_pika.connect(run.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        depths = []
        for queue in ("progression.facts", "reporting.events"):
            for name in (queue, f"{queue}.dlq"):
                declared = await channel.declare_queue(run.settings.queue_prefix + name, passive=True)
                depths.append(declared.declaration_result.message_count or 0)
        return depths


async def quiescent(run: Pipeline, history: History, timeout: float = 180.0) -> None:
    """Every fact consumed by both services, every decision progression announced published and logged
    by reporting, no queue holding anything, and all of that unchanged for a while."""
    progression_pool, reporting_pool = pool_of(run.progression), pool_of(run.reporting)
    for_progression = {event.id for event in history.events if type(event.payload()) in PROGRESSION_FACTS}
    fact_ids = {event.id for event in history.events}
    deadline = time.monotonic() + timeout
    stable, last = 0, None
    while stable < 4:
        assert time.monotonic() < deadline, f"the pipeline never went quiet: {last}"
        await asyncio.sleep(0.3)
        consumed = {r["event_id"] for r in await progression_pool.fetch("SELECT event_id FROM inbox")}
        logged = {r["event_id"] for r in await reporting_pool.fetch("SELECT event_id FROM event_log")}
        unpublished = await progression_pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        announced = {r["event_id"] for r in await progression_pool.fetch("SELECT event_id FROM outbox")}
        depths = await queue_depths(run)
        state = (len(for_progression - consumed), len(fact_ids - logged), unpublished, len(announced - logged),
                 len(logged), depths)
        settled = (for_progression <= consumed and fact_ids <= logged and unpublished == 0
                   and announced <= logged and not any(depths))
        stable = stable + 1 if settled and state == last else 0
        last = state
        if os.environ.get("DX_E2E_DEBUG"):
            print("quiescent?", state, file=sys.stderr, flush=True)
    dead_lettered = (await queue_depths(run))[1::2]
    assert dead_lettered == [0, 0], f"dead-lettered messages: {dead_lettered}"


def without_announcement_ids(standing: Any) -> Any:
    if isinstance(standing, dict):
        return {k: without_announcement_ids(v) for k, v in standing.items() if k != "decision_event_id"}
    if isinstance(standing, list):
        return [without_announcement_ids(v) for v in standing]
    return standing


async def every_report(run: Pipeline) -> dict[str, Any]:
    reports: dict[str, Any] = {}

    async def get(client: httpx.AsyncClient, path: str) -> Any:
        response = await client.get(path)
        assert response.status_code in (200, 404), f"{path}: {response.status_code} {response.text}"
        if response.headers["content-type"].startswith("text/csv"):
            return (response.status_code, response.content.decode("utf-8-sig"))
        return (response.status_code, response.json())

    first, last = FISCAL_YEARS[0], FISCAL_YEARS[-1] + 1
    reports["plan"] = await get(run.reporting, f"/api/v1/reports/plan?from={first}&to={last}")
    reports["plan.csv"] = await get(run.reporting, f"/api/v1/reports/plan.csv?from={first}&to={last}")
    for fiscal_year in FISCAL_YEARS:
        for report in ("departments", "baseline", "sessions"):
            reports[f"{report} {fiscal_year}"] = await get(run.reporting, f"/api/v1/reports/{report}?fiscal_year={fiscal_year}")
    for staff_id in STAFF:
        reports[f"trainee {staff_id}"] = await get(run.reporting, f"/api/v1/reports/trainees/{staff_id}")
        status, standing = await get(run.progression, f"/api/v1/trainees/{staff_id}")
        reports[f"standing {staff_id}"] = (status, without_announcement_ids(standing))
    return reports


async def run_once(servers: Servers, history: History, items: list[Item]) -> dict[str, Any]:
    async with pipeline(servers) as run:
        started = time.monotonic()
        await feed(run, items)
        fed = time.monotonic()
        await quiescent(run, history)
        quiet = time.monotonic()
        reports = await every_report(run)
        if os.environ.get("DX_E2E_DEBUG"):
            print(f"fed {fed - started:.1f}s quiet {quiet - fed:.1f}s reports {time.monotonic() - quiet:.1f}s",
                  file=sys.stderr, flush=True)
        return reports


def differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """A unified diff of each report document that differs between the two runs."""
    def lines(document: Any) -> list[str]:
        return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True, default=str).splitlines()

    return [
        "\n".join(difflib.unified_diff(lines(first[key]), lines(second.get(key)), f"{key} (first order)",
                                       f"{key} (second order)", lineterm="", n=2))
        for key in first
        if first[key] != second.get(key)
    ]


# Each example starts two pipelines and feeds ~150 events through each: a few examples, no shrinking
# (a shrink step costs as much as an example); a failure prints both orders' differing documents.
@settings(
    max_examples=int(os.environ.get("DX_E2E_EXAMPLES", "5")), deadline=None, suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(history=histories(), seeds=st.tuples(st.integers(0, 2**32), st.integers(0, 2**32)))
def test_every_report_is_the_same_for_the_same_set_of_facts_in_any_order_with_duplicates(
    servers: Servers, idp: Idp, history: History, seeds: tuple[int, int]
) -> None:
    first_order = feeding_order(history, random.Random(seeds[0]))
    second_order = feeding_order(history, random.Random(seeds[1]))

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        return (await run_once(servers, history, first_order),
                await run_once(servers, history, second_order))

    first, second = asyncio.run(both())

    assert any(status == 200 for status, _ in (first[f"trainee {s}"] for s in STAFF)) or not any(
        isinstance(e.payload(), c.TraineeNominated) for e in history.events
    )
    differing = differences(first, second)
    assert not differing, f"{len(differing)} report documents differ:\n" + "\n".join(differing)
