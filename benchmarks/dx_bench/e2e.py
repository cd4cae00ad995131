"""The four services end to end, against a minimal pipeline measured in the same run.

    uv run python -m dx_bench e2e [--quick] [--rates 100 500] [--port-base 9700] …

Makes a throw-away database and RabbitMQ vhost, starts the local identity provider and the four services
as processes (uvicorn), imports a roster of benchmark staff, nominates each of them (self slot) for the
current fiscal year, and schedules one stage-1 e-learning session as the whole stage-1 curriculum, so
that each signed webhook completion completes one trainee's stage 1 and shows in the plan report
(training → SessionCompleted → progression → StageCompleted → reporting). Then it measures:

1. the minimal pipeline (dx_bench.minimal) live with its producer, on the same servers;
2. a sustained phase: keep-alive clients post completions as fast as they are answered; the rate is the
   completions reflected in the plan report per second, from the first post until the last is visible;
   the CPU time of each service process and of its PostgreSQL backends over that phase, per completion;
   the database round trips per event, from each service's `dx_db_round_trips_total`;
3. latency phases at fixed offered rates and at half the sustained rate: for each accepted (2xx)
   delivery, the time until the plan report counts it (the plan report is polled; the k-th acceptance is
   matched to the moment the count reached k), and for a sample of deliveries until the trainee report
   shows the completed stage; p50/p95/p99, p99/p50 and stalls (the plan count standing still for a second
   or more while completions were outstanding).

Everything it made is removed at the end, also after a failure or Ctrl-C. The load generator and the
minimal pipeline run on the same machine as the services and take a share of its CPUs: the load average
is printed at the start and the end. No figure here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import io
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from dx_bench import measure, minimal
from dx_bench.load import Deliveries, closed_loop, open_loop, signed_completion
from dx_bench.system import SERVICES, WEBHOOK_SECRET, Ports, ThrowawaySystem
from dx_shared.calendar import fiscal_year_of

SESSION_ID = "BENCH-S1-EL"
DEPARTMENT = "B0001"
STALL_SECONDS = 1.0
TRAINEE_SAMPLES = 20
TRAINEE_POLL = 0.05
SHEET_ROWS = 2000


@dataclass(frozen=True)
class Options:
    sustained_seconds: float
    sustained_max: int
    clients: int
    latency_seconds: float
    rates: tuple[float, ...]
    half_rate_cap: float
    minimal_seconds: float
    warmup: int
    plan_poll: float
    pool_max_size: int

    def trainees(self) -> int:
        latency = sum(rate * self.latency_seconds for rate in self.rates) + self.half_rate_cap * self.latency_seconds
        return int(self.warmup + self.sustained_max + latency) + 10


@dataclass
class Progress:
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    deliveries: Deliveries | None = None
    visible: int = 0

    def begin(self, phase: str, deliveries: Deliveries | None = None) -> None:
        self.show(final=True)
        self.phase, self.started, self.deliveries, self.visible = phase, time.monotonic(), deliveries, 0

    def line(self) -> str:
        text = f"{self.phase}: {time.monotonic() - self.started:6.1f} s"
        if self.deliveries is not None:
            text += f"  sent {self.deliveries.sent}  2xx {self.deliveries.accepted}  visible {self.visible}"
        elif self.visible:
            text += f"  {self.visible} so far"
        return text

    def show(self, final: bool = False) -> None:
        sys.stderr.write("\r\033[K" + self.line() + ("\n" if final else ""))
        sys.stderr.flush()

    async def keep_showing(self) -> None:
        while True:
            self.show()
            await asyncio.sleep(0.5)


class Staff:
    """The benchmark's trainees, handed out in order: each completes stage 1 once."""

    def __init__(self, count: int) -> None:
        self.ids = [f"8{number:06d}" for number in range(count)]
        self._next = 0

    def take(self, count: int) -> list[str]:
        taken = self.ids[self._next : self._next + count]
        self._next += len(taken)
        return taken

    @property
    def left(self) -> int:
        return len(self.ids) - self._next


@dataclass
class LatencyFigures:
    label: str
    offered: float
    achieved: float
    accepted: int
    plan: list[float]
    trainee: list[float]
    stalls: int
    longest_still: float
    statuses: dict[int, int]


class Bench:
    def __init__(self, system: ThrowawaySystem, options: Options, progress: Progress) -> None:
        self.system = system
        self.options = options
        self.progress = progress
        now = datetime.now(UTC) - timedelta(days=2)
        self.fiscal_year = fiscal_year_of(now)
        self.occurred_at = f"{self.fiscal_year}-04-02T10:00:00+09:00"
        self.staff = Staff(options.trainees())
        self.plan_request_seconds: list[float] = []
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {system.token}"},
            timeout=120,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        await self.http.aclose()

    # -- set-up ---------------------------------------------------------------------------------
    async def load_people(self) -> None:
        nomination, training = self.system.url("nomination"), self.system.url("training")
        year = {"fiscal_year": self.fiscal_year}
        csv_headers = {"content-type": "text/csv"}
        departments = f"所属コード,所属名,部局,有効\n{DEPARTMENT},ベンチマーク課,ベンチマーク部,○\n"
        await self._ok(
            "POST",
            f"{nomination}/api/v1/departments/import",
            params=year,
            content=departments.encode("cp932"),
            headers=csv_headers,
        )
        roster = io.StringIO()
        roster.write("職員番号,氏名,所属コード,管理職\n")
        for number, staff_id in enumerate(self.staff.ids):
            roster.write(f"{staff_id},ベンチ職員{number},{DEPARTMENT},0\n")
        await self._ok(
            "POST",
            f"{nomination}/api/v1/staff/import",
            params=year,
            content=roster.getvalue().encode("cp932"),
            headers=csv_headers,
        )
        await self._ok(
            "POST",
            f"{training}/api/v1/sessions",
            json={
                "session_id": SESSION_ID,
                "fiscal_year": self.fiscal_year,
                "method": "e_learning",
                "audience": "promoter",
                "stage": 1,
                "title": "ベンチマーク ステージ1 e-ラーニング",
                "move_on": "completed",
            },
        )
        await self._ok("PUT", f"{training}/api/v1/curricula/{self.fiscal_year}/1", json={"session_ids": [SESSION_ID]})
        for start in range(0, len(self.staff.ids), SHEET_ROWS):
            sheet = io.StringIO()
            sheet.write("職員番号,枠,所属コード\n")
            for staff_id in self.staff.ids[start : start + SHEET_ROWS]:
                sheet.write(f"{staff_id},自薦,{DEPARTMENT}\n")
            await self._ok(
                "POST",
                f"{nomination}/api/v1/nominations/import",
                params=year,
                content=sheet.getvalue().encode("cp932"),
                headers=csv_headers,
            )
        self.progress.begin("waiting for the nominations to reach the reports")
        deadline = time.monotonic() + 900
        while True:
            entered = (await self.plan_cell())["entered"]
            self.progress.visible = entered
            if entered >= len(self.staff.ids):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {entered} of {len(self.staff.ids)} nominations reached the plan report")
            await asyncio.sleep(0.5)

    async def _ok(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
        return response

    async def plan_cell(self) -> dict[str, int]:
        asked = time.monotonic()
        response = await self._ok(
            "GET",
            f"{self.system.url('reporting')}/api/v1/reports/plan",
            params={"from": self.fiscal_year, "to": self.fiscal_year},
        )
        stage_one = next(row for row in response.json()["stages"] if row["stage"] == 1)
        cell: dict[str, int] = stage_one["cells"][0]
        self.plan_request_seconds.append(time.monotonic() - asked)
        return cell

    async def completed(self) -> int:
        return int((await self.plan_cell())["completed"])

    def requests(self, count: int) -> list[tuple[str, bytes]]:
        return [
            (staff_id, signed_completion(WEBHOOK_SECRET, SESSION_ID, staff_id, self.occurred_at))
            for staff_id in self.staff.take(count)
        ]

    async def wait_visible(self, target: int, timeout: float, poll: float) -> list[tuple[float, int]]:
        """Polls the plan report until it counts `target` completions; returns (time, count) per poll."""
        seen: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        while True:
            count = await self.completed()
            seen.append((time.monotonic(), count))
            self.progress.visible = count
            if count >= target or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(poll)

    # -- phases ---------------------------------------------------------------------------------
    async def warm_up(self) -> None:
        deliveries = Deliveries()
        self.progress.begin("warm-up", deliveries)
        base = await self.completed()
        await closed_loop(
            self.system.ports.http("training"),
            self.requests(self.options.warmup),
            clients=min(8, self.options.clients),
            seconds=60,
            into=deliveries,
        )
        await self.wait_visible(base + deliveries.accepted, timeout=300, poll=0.25)

    async def run_sustained(self) -> dict[str, Any]:
        deliveries = Deliveries()
        requests = self.requests(self.options.sustained_max)
        base = await self.completed()
        admin = await asyncpg.connect(self.system.admin_database_url)
        try:
            service_pids = {service: self.system.pid(service) for service in SERVICES}
            processes = {service: [pid, *measure.children(pid)] for service, pid in service_pids.items()}
            backends_before = await measure.backends(admin, self.system.database, SERVICES)
            # Beside the services: the broker, this process (the load generator and the report polls) and
            # the whole machine, so that what the services do not spend is accounted for too.
            around = {"broker": measure.broker_pids(), "benchmark": [os.getpid()]}
            cpu_before = measure.read(processes), measure.read(backends_before)
            around_before, machine_before = measure.read(around), measure.machine_busy_seconds()
            trips_before = await self.counters(measure.ROUND_TRIPS)
            consumed_before = await self.counters(measure.EVENTS_CONSUMED)
            self.progress.begin(f"sustained ({self.options.clients} clients)", deliveries)
            # The plan report is read once a second during the load too (few reads: their cost counts in
            # reporting's CPU), so a pipeline that falls behind while the clients send shows as it happens.
            during = asyncio.create_task(self._watch_visible(period=1.0))
            try:
                await closed_loop(
                    self.system.ports.http("training"),
                    requests,
                    clients=self.options.clients,
                    seconds=self.options.sustained_seconds,
                    into=deliveries,
                )
            finally:
                during.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await during
            seen = await self.wait_visible(base + deliveries.accepted, timeout=600, poll=0.25)
            visible_when_stopped = seen[0][1] - base
            visible_at = seen[-1][0]
            backends_after = await measure.backends(admin, self.system.database, SERVICES)
            for service in SERVICES:
                backends_after[service] = sorted(set(backends_after[service]) | set(backends_before[service]))
            cpu_after = measure.read(processes), measure.read(backends_after)
            around_after, machine_after = measure.read(around), measure.machine_busy_seconds()
            trips_after = await self.counters(measure.ROUND_TRIPS)
            consumed_after = await self.counters(measure.EVENTS_CONSUMED)
        finally:
            await admin.close()
        visible = seen[-1][1] - base
        return {
            "deliveries": deliveries,
            "visible": visible,
            "complete": visible >= deliveries.accepted,
            "visible_when_stopped": visible_when_stopped,
            "rate": visible / (visible_at - deliveries.started),
            "accepted_rate": deliveries.accepted / (deliveries.finished - deliveries.started),
            "cpu_service": measure.used(cpu_before[0], cpu_after[0]),
            "cpu_database": measure.used(cpu_before[1], cpu_after[1]),
            "cpu_around": measure.used(around_before, around_after),
            "cpu_machine": machine_after - machine_before,
            "trips": _deltas(trips_before, trips_after),
            "consumed": _deltas(consumed_before, consumed_after),
        }

    async def _watch_visible(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.progress.visible = await self.completed()

    async def counters(self, name: str) -> dict[str, float | None]:
        async with httpx.AsyncClient(timeout=5) as client:
            return {
                service: await measure.counter_total(client, self.system.metrics_url(service), name)
                for service in SERVICES
            }

    async def latency(self, label: str, rate: float) -> LatencyFigures:
        count = min(int(rate * self.options.latency_seconds), self.staff.left)
        deliveries = Deliveries()
        requests = self.requests(count)
        base = await self.completed()
        samples = set(staff_id for staff_id, _ in requests[:: max(1, count // TRAINEE_SAMPLES)])
        trainee_latencies: list[float] = []
        watchers: list[asyncio.Task[None]] = []

        async def watch_sampled() -> None:
            looked = 0
            while True:
                for index in range(looked, deliveries.accepted):
                    staff_id = deliveries.accepted_staff[index]
                    if staff_id in samples:
                        watchers.append(
                            asyncio.create_task(
                                self._trainee_visible(staff_id, deliveries.accepted_at[index], trainee_latencies)
                            )
                        )
                looked = deliveries.accepted
                await asyncio.sleep(0.005)

        self.progress.begin(f"latency at {label}", deliveries)
        sampler = asyncio.create_task(watch_sampled())
        polling = asyncio.create_task(self._poll_plan_until(base, deliveries, count))
        clients = min(64, max(4, int(rate // 5)))
        await open_loop(self.system.ports.http("training"), requests, rate=rate, clients=clients, into=deliveries)
        seen = await polling
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await asyncio.wait_for(asyncio.gather(*watchers, return_exceptions=True), timeout=120)
        plan_latencies = _matched_latencies(deliveries.accepted_at, seen, base)
        stalls, longest = _stalls(deliveries.accepted_at, seen, base)
        span = (deliveries.accepted_at[-1] - deliveries.started) if deliveries.accepted_at else 0.0
        return LatencyFigures(
            label=label,
            offered=rate,
            achieved=deliveries.accepted / span if span > 0 else 0.0,
            accepted=deliveries.accepted,
            plan=plan_latencies,
            trainee=trainee_latencies,
            stalls=stalls,
            longest_still=longest,
            statuses=deliveries.statuses,
        )

    async def _poll_plan_until(self, base: int, deliveries: Deliveries, count: int) -> list[tuple[float, int]]:
        seen: list[tuple[float, int]] = []
        deadline: float | None = None
        while True:
            visible = await self.completed()
            now = time.monotonic()
            seen.append((now, visible))
            self.progress.visible = visible - base
            finished_sending = deliveries.sent >= count and deliveries.finished > 0
            if finished_sending and visible - base >= deliveries.accepted:
                return seen
            if finished_sending:
                deadline = deadline or now + 300
                if now > deadline:
                    return seen
            await asyncio.sleep(self.options.plan_poll)

    async def _trainee_visible(self, staff_id: str, accepted_at: float, into: list[float]) -> None:
        url = f"{self.system.url('reporting')}/api/v1/reports/trainees/{staff_id}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            response = await self.http.get(url)
            if response.status_code == 200 and any(
                year.get("completed_stage") for year in response.json().get("years", [])
            ):
                into.append(time.monotonic() - accepted_at)
                return
            await asyncio.sleep(TRAINEE_POLL)


def _deltas(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    return {
        service: None if before[service] is None or after[service] is None else after[service] - before[service]  # type: ignore[operator]
        for service in before
    }


def _matched_latencies(accepted_at: Sequence[float], seen: Sequence[tuple[float, int]], base: int) -> list[float]:
    """The k-th acceptance against the first poll that counted k completions (completions are alike, so
    the k-th to become visible stands for the k-th accepted)."""
    latencies: list[float] = []
    polls = iter(seen)
    current = next(polls, None)
    for k, accepted in enumerate(sorted(accepted_at), start=1):
        while current is not None and current[1] - base < k:
            current = next(polls, None)
        if current is None:
            break
        latencies.append(max(0.0, current[0] - accepted))
    return latencies


def _stalls(accepted_at: Sequence[float], seen: Sequence[tuple[float, int]], base: int) -> tuple[int, float]:
    """Times the plan count stood still for STALL_SECONDS or more while accepted completions were not yet
    visible, and the longest such stretch."""
    ordered = sorted(accepted_at)
    stalls, longest = 0, 0.0
    still_since: float | None = None
    last = -1
    for moment, count in seen:
        outstanding = bisect.bisect_right(ordered, moment) > count - base
        if count != last or not outstanding:
            if still_since is not None:
                stretch = moment - still_since
                longest = max(longest, stretch)
                stalls += stretch >= STALL_SECONDS
            still_since = moment if outstanding else None
            last = count
    return stalls, longest


def _ms(values: Sequence[float], fraction: float) -> str:
    value = measure.percentile(values, fraction)
    return "   n/a" if value != value else f"{value * 1000:6.0f}"


def _ratio(values: Sequence[float]) -> str:
    p50, p99 = measure.percentile(values, 0.5), measure.percentile(values, 0.99)
    return "  n/a" if not values or p50 <= 0 else f"{p99 / p50:5.1f}"


def report(
    minimal_result: minimal.MinimalResult,
    sustained: dict[str, Any],
    phases: list[LatencyFigures],
    options: Options,
    plan_polls: Sequence[float],
) -> Iterator[str]:
    deliveries: Deliveries = sustained["deliveries"]
    completions = max(1, sustained["visible"])
    yield (
        f"minimal pipeline (consume → dedupe insert + upsert → multi-ack after commit), with its producer live: "
        f"{minimal_result.applied_per_second:.0f} events/s (producer {minimal_result.published_per_second:.0f}/s)"
    )
    limit = minimal_result.applied_per_second
    yield (
        f"webhook completions accepted (2xx): {sustained['accepted_rate']:.0f}/s"
        f" = {sustained['accepted_rate'] / limit if limit else 0.0:.2f} × the minimal pipeline"
        f" ({deliveries.accepted} in {deliveries.finished - deliveries.started:.1f} s, {options.clients} keep-alive clients;"
        f" statuses {deliveries.statuses})"
    )
    ratio = sustained["rate"] / limit if limit else 0.0
    unfinished = (
        "" if sustained["complete"] else f" (only {sustained['visible']} of {deliveries.accepted} became visible)"
    )
    yield (
        f"completions reflected in the plan report, sustained: {sustained['rate']:.0f}/s{unfinished}"
        f" = {ratio:.2f} × the minimal pipeline (target ≥ 0.25);"
        f" {sustained.get('visible_when_stopped', 0)} of {deliveries.accepted} visible when the clients stopped"
    )
    yield "CPU per completion, ms (service process + its PostgreSQL backends):"
    total = 0.0
    for service in SERVICES:
        own = 1000 * sustained["cpu_service"][service] / completions
        database = 1000 * sustained["cpu_database"][service] / completions
        total += own + database
        yield f"  {service:<12} {own:6.2f} + {database:6.2f} = {own + database:6.2f}"
    yield f"  {'all':<12} {total:24.2f}  (target ≤ 2 ms)"
    around = sustained["cpu_around"]
    yield f"  {'broker':<12} {1000 * around['broker'] / completions:24.2f}  (the RabbitMQ node, shared with anything else on it)"
    yield (
        f"  {'benchmark':<12} {1000 * around['benchmark'] / completions:24.2f}"
        "  (this process: the load generator and the report polls)"
    )
    yield (
        f"  {'machine':<12} {1000 * sustained['cpu_machine'] / completions:24.2f}"
        f"  (every process, /proc/stat; {os.cpu_count()} CPUs give {1000 * (os.cpu_count() or 1) / sustained['rate']:.2f}"
        " ms per completion at the rate above)"
    )
    trips, consumed = sustained["trips"], sustained["consumed"]

    def per(service: str, what: str, by_events: bool) -> str:
        if trips[service] is None:
            return f"{service} n/a"
        divisor = consumed[service] if by_events and consumed[service] else completions
        return f"{service} {trips[service] / divisor:.2f} per {what}"

    yield (
        "database round trips (dx_db_round_trips_total): "
        + "; ".join(
            [
                per("training", "completion", False),
                per("progression", "fact", True),
                per("reporting", "event", True),
                per("nomination", "completion", False),
            ]
        )
    )
    yield (
        f"plan report polled every {options.plan_poll * 1000:.0f} ms after the last answer; one poll took"
        f" p50 {_ms(plan_polls, 0.5).strip()} ms, p99 {_ms(plan_polls, 0.99).strip()} ms (a latency includes up to one poll)"
    )
    yield "latency, webhook 2xx → visible, ms          p50    p95    p99  p99/p50  stalls (≥1 s still)"
    for phase in phases:
        yield (
            f"  {phase.label:<18} plan report     {_ms(phase.plan, 0.5)} {_ms(phase.plan, 0.95)} {_ms(phase.plan, 0.99)}"
            f"  {_ratio(phase.plan)}   {phase.stalls} (longest still {phase.longest_still:.2f} s)"
        )
        yield (
            f"  {'':<18} trainee report  {_ms(phase.trainee, 0.5)} {_ms(phase.trainee, 0.95)} {_ms(phase.trainee, 0.99)}"
            f"  {_ratio(phase.trainee)}   ({len(phase.trainee)} sampled)"
        )
        yield (
            f"  {'':<18} offered {phase.offered:.0f}/s, accepted {phase.achieved:.0f}/s ({phase.accepted} deliveries,"
            f" statuses {phase.statuses})"
        )


async def run(system: ThrowawaySystem, options: Options, progress: Progress) -> list[str]:
    showing = asyncio.create_task(progress.keep_showing())
    bench: Bench | None = None
    try:
        progress.begin("starting the identity provider and the four services")
        await system.start(options.pool_max_size)
        bench = Bench(system, options, progress)
        progress.begin(f"loading {len(bench.staff.ids)} staff, their nominations, the session and curriculum")
        await bench.load_people()
        progress.begin("minimal pipeline")
        minimal_result = await minimal.run(system.bus_url, system.database_url, options.minimal_seconds)
        await bench.warm_up()
        sustained = await bench.run_sustained()
        phases = []
        for rate in options.rates:
            phases.append(await bench.latency(f"{rate:.0f}/s offered", rate))
        half = min(sustained["rate"] / 2, options.half_rate_cap)
        phases.append(await bench.latency(f"50 % ({half:.0f}/s)", max(1.0, half)))
        progress.begin("done")
        return list(report(minimal_result, sustained, phases, options, bench.plan_request_seconds))
    finally:
        showing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await showing
        if bench is not None:
            await bench.close()


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dx_bench e2e", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run with a small load (a smoke run, not a figure)"
    )
    parser.add_argument("--sustained-seconds", type=float, help="length of the sustained phase (default 15; quick 3)")
    parser.add_argument(
        "--sustained-max", type=int, help="most deliveries in the sustained phase (default 6000; quick 300)"
    )
    parser.add_argument("--clients", type=int, default=32, help="keep-alive clients of the sustained phase")
    parser.add_argument("--latency-seconds", type=float, help="length of each latency phase (default 8; quick 2)")
    parser.add_argument(
        "--rates", type=float, nargs="+", help="fixed offered rates per second (default 100 500; quick 10 25)"
    )
    parser.add_argument(
        "--minimal-seconds", type=float, help="measured window of the minimal pipeline (default 10; quick 2)"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("DX_BENCH_PORT_BASE", "9700")),
        help="the identity provider listens here, the services on the next 4 ports, their metrics"
        " from +11 (default 9700 or DX_BENCH_PORT_BASE)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=20.0,
        help="ms between plan-report polls in the latency phases (finer resolution, more load on reporting)",
    )
    parser.add_argument("--pool-max-size", type=int, default=10, help="DX_POOL_MAX_SIZE of each service")
    parser.add_argument(
        "--service-setting",
        action="append",
        default=[],
        metavar="DX_NAME=VALUE",
        help="a setting for the four services, e.g. DX_OUTBOX_PUBLISH_IMMEDIATELY=false to compare (repeatable)",
    )
    return parser


def options_from(arguments: argparse.Namespace) -> Options:
    quick = arguments.quick
    rates = tuple(arguments.rates or ((10.0, 25.0) if quick else (100.0, 500.0)))
    return Options(
        sustained_seconds=arguments.sustained_seconds or (3.0 if quick else 15.0),
        sustained_max=arguments.sustained_max or (300 if quick else 6000),
        clients=arguments.clients,
        latency_seconds=arguments.latency_seconds or (2.0 if quick else 8.0),
        rates=rates,
        half_rate_cap=25.0 if quick else 300.0,
        minimal_seconds=arguments.minimal_seconds or (2.0 if quick else 10.0),
        warmup=20 if quick else 200,
        plan_poll=arguments.poll_interval / 1000,
        pool_max_size=arguments.pool_max_size,
    )


def _stop_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    options = options_from(arguments)
    system = ThrowawaySystem(
        admin_database_url=os.environ.get("DX_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        amqp_url=os.environ.get("DX_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        ports=Ports(arguments.port_base),
        service_settings=dict(setting.split("=", 1) for setting in arguments.service_setting),
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(
        f"dx_bench e2e: {os.cpu_count()} CPUs; load average at start {measure.load_average()};"
        f" database {system.database}, vhost {system.vhost}",
        flush=True,
    )
    progress = Progress()
    status = 1
    try:
        lines = asyncio.run(run(system, options, progress))
        print("\n".join(lines), flush=True)
        status = 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    except Exception as exc:
        print(f"\nthe benchmark failed: {exc!r}", file=sys.stderr)
        for service in ("idp", *SERVICES):
            print(system.log_tail(service), file=sys.stderr)
    finally:
        problems = system.stop()
        for problem in problems:
            print(f"clean-up: {problem}", file=sys.stderr)
        print(
            f"load average at end {measure.load_average()}; cleaned up: database {system.database} dropped,"
            f" vhost {system.vhost} deleted, processes stopped"
            if not problems
            else "clean-up incomplete",
            flush=True,
        )
    return status if not problems else 1
