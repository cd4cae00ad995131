"""How long the plan and department reports take after 10,000 and after 1,000,000 consumed events,
and how many events a second the consumer applies.

    uv run python -m dx_bench reporting [--events 1000000]
    uv run python -m dx_bench reporting --consume-only [--workers 1 16]

Works in a throwaway database `dx_bench_<random>` on the configured server, dropped afterwards.
The first 10,000 events (five years of departments, rosters, sessions, nominations, stage decisions
and completions) go through the projection code path exactly as the consumer applies them. The rest,
baseline e-learning completions as the training service would publish them over the years, are
loaded with COPY into the event log and the projection rows, and the counters recomputed from the rows.
Each report is then timed as the API runs it (median of repeated runs).

`--consume-only` feeds the same 10,000 events, one transaction each, through the shared consumer's
`process` (the event log, which deduplicates, and the projections) with as many concurrent workers as the service has
messages in flight (`DX_PREFETCH`, bounded by `DX_POOL_MAX_SIZE`), and prints the events per second,
once per worker count given, each on a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from dx_shared import contracts as c
from dx_shared.consumer import process
from dx_shared.database import create_pool, ensure_database, migrate
from dx_shared.envelope import CloudEvent, new_event
from dx_shared.settings import Settings, get_settings
from reporting import handlers, reports
from reporting.rebuild import MIGRATIONS_DIR, SCHEMA
from reporting.repository import ReportQueries

YEARS = (2024, 2025, 2026, 2027, 2028)
DEPARTMENTS = [(f"D{n:03}", f"所属{n:03}", f"部局{n % 12:02}") for n in range(1, 201)]
STAFF = [f"S{n:05}" for n in range(1, 5001)]
FIRST_PHASE = 10_000
RUNS = 30


def _first_phase_events(rng: random.Random) -> Iterator[CloudEvent]:
    """Five years of what the other services publish, ending in completions until 10,000 events."""
    clock = datetime(2024, 4, 1, tzinfo=UTC)
    produced = 0
    promoters: list[str] = []
    for year in YEARS:
        yield new_event(
            c.DepartmentsImported(
                fiscal_year=year,
                departments=[c.DepartmentEntry(code=d, name=n, bureau=b) for d, n, b in DEPARTMENTS],
                total=len(DEPARTMENTS),
            ),
            time=clock,
        )
        yield new_event(
            c.StaffImported(
                fiscal_year=year,
                staff=[
                    c.StaffEntry(staff_id=s, department_code=rng.choice(DEPARTMENTS)[0], is_manager=rng.random() < 0.1)
                    for s in STAFF
                ],
                total=len(STAFF),
            ),
            time=clock,
        )
        for n in range(4):
            yield new_event(
                c.SessionScheduled(
                    session_id=f"B{year}-{n}",
                    fiscal_year=year,
                    method=c.Method.E_LEARNING,
                    audience=c.Audience.ALL_STAFF,
                    title="基礎研修",
                ),
                time=clock,
            )
        produced += 6
        newcomers = [s for s in rng.sample(STAFF, 260) if s not in promoters][:200]
        for staff_id in newcomers + promoters[-60:]:
            clock += timedelta(minutes=5)
            new = staff_id in newcomers
            yield new_event(
                c.TraineeNominated(
                    nomination_id=str(uuid.uuid4()),
                    staff_id=staff_id,
                    department_code=rng.choice(DEPARTMENTS)[0],
                    fiscal_year=year,
                    slot=c.Slot.RECOMMENDED if new else c.Slot.SELF,
                ),
                time=clock,
            )
            yield new_event(
                c.StageAdvanced(
                    staff_id=staff_id,
                    fiscal_year=year,
                    from_stage=0 if new else 1,
                    to_stage=1 if new else 2,
                    rule_version="1",
                ),
                time=clock,
            )
            yield new_event(
                c.StageCompleted(staff_id=staff_id, fiscal_year=year, stage=1 if new else 2, completed_at=clock),
                time=clock,
            )
            produced += 3
        promoters += newcomers
    while produced < FIRST_PHASE:
        year = rng.choice(YEARS)
        yield new_event(
            c.SessionCompleted(
                completion_id=str(uuid.uuid4()),
                session_id=f"B{year}-{rng.randrange(4)}",
                staff_id=rng.choice(STAFF),
                fiscal_year=year,
                method=c.Method.E_LEARNING,
                occurred_at=clock,
                recorded_at=clock,
                source=c.CompletionSource.WEBHOOK,
            ),
            time=clock,
        )
        produced += 1


async def _project(pool: asyncpg.Pool, events: Iterator[CloudEvent]) -> int:
    count = 0
    batch: list[CloudEvent] = []

    async def flush() -> None:
        async with pool.acquire() as conn, conn.transaction():
            for event in batch:
                payload = event.payload()
                assert payload is not None
                await handlers.handle(conn, event, payload)

    for event in events:
        batch.append(event)
        count += 1
        if len(batch) == 500:
            await flush()
            batch = []
    if batch:
        await flush()
    return count


async def _bulk_completions(url: str, count: int, rng: random.Random) -> None:
    """COPY `count` more baseline completions (event log + projection rows), then recount the tallies."""
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        sessions_per_year = count // (len(YEARS) * len(STAFF)) + 1
        await conn.copy_records_to_table(
            "session",
            columns=["session_id", "fiscal_year", "method", "audience", "title"],
            records=[
                (f"E{year}-{n}", year, "e_learning", "all_staff", "e-ラーニング")
                for year in YEARS
                for n in range(sessions_per_year)
            ],
        )
        chunk = 50_000
        produced = 0
        moment = datetime(2024, 6, 1, tzinfo=UTC)
        while produced < count:
            events, records, attendance, projected = [], [], [], []
            for index in range(produced, min(produced + chunk, count)):
                year = YEARS[index % len(YEARS)]
                staff_id = STAFF[(index // len(YEARS)) % len(STAFF)]
                session_id = f"E{year}-{index // (len(YEARS) * len(STAFF))}"
                event_id = str(uuid.uuid4())
                body = {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "/dx/training",
                    "type": c.SessionCompleted.ce_type(),
                    "time": moment.isoformat(),
                    "subject": staff_id,
                    "data": {
                        "completion_id": event_id,
                        "session_id": session_id,
                        "staff_id": staff_id,
                        "fiscal_year": year,
                        "method": "e_learning",
                        "occurred_at": moment.isoformat(),
                        "recorded_at": moment.isoformat(),
                        "source": "webhook",
                    },
                }
                events.append((event_id, body["type"], c.SessionCompleted.routing_key(), moment, json.dumps(body)))
                records.append(
                    (event_id, "completion", session_id, staff_id, year, "e_learning", "webhook", moment, moment)
                )
                attendance.append((session_id, staff_id, year, 1, 0))
                projected.append((event_id,))
            await conn.copy_records_to_table(
                "event_log", columns=["event_id", "event_type", "routing_key", "event_time", "body"], records=events
            )
            await conn.copy_records_to_table(
                "completion_record",
                columns=[
                    "record_id",
                    "kind",
                    "session_id",
                    "staff_id",
                    "fiscal_year",
                    "method",
                    "source",
                    "occurred_at",
                    "recorded_at",
                ],
                records=records,
            )
            await conn.copy_records_to_table(
                "attendance",
                columns=["session_id", "staff_id", "fiscal_year", "completions", "waivers"],
                records=attendance,
            )
            await conn.copy_records_to_table("projected_event", records=projected)
            produced += len(events)
            moment += timedelta(seconds=rng.randrange(1, 30))
        await conn.execute(
            """
            INSERT INTO session_tally (session_id, completions)
              SELECT session_id, count(*) FROM attendance WHERE session_id LIKE 'E%' GROUP BY session_id;
            UPDATE baseline_person p SET all_staff_sessions = p.all_staff_sessions + a.n
              FROM (SELECT fiscal_year, staff_id, count(*) AS n FROM attendance WHERE session_id LIKE 'E%'
                    GROUP BY fiscal_year, staff_id) a
              WHERE p.fiscal_year = a.fiscal_year AND p.staff_id = a.staff_id;
            DELETE FROM baseline_tally;
            INSERT INTO baseline_tally (fiscal_year, department_code, staff, staff_done, managers, managers_done)
              SELECT fiscal_year, department_code, count(*), count(*) FILTER (WHERE all_staff_sessions > 0),
                     count(*) FILTER (WHERE is_manager),
                     count(*) FILTER (WHERE is_manager AND managers_sessions > 0)
              FROM baseline_person WHERE on_roster GROUP BY fiscal_year, department_code;
            UPDATE stream_health SET events = events + $1
              WHERE (routing_key, shard) IN (SELECT routing_key, min(shard) FROM stream_health
                                             WHERE routing_key = 'training.SessionCompleted.v1' GROUP BY 1);
            ANALYZE;
        """.replace("$1", str(count))
        )
    finally:
        await conn.close()


async def _latency(pool: asyncpg.Pool, settings: Settings) -> dict[str, float]:
    queries = ReportQueries(pool)
    targets = reports.plan_targets(settings)

    async def plan() -> Any:
        return await reports.plan_report(queries, targets, targets.first_year, targets.last_year)

    async def departments() -> Any:
        return await reports.department_report(queries, 2026)

    timings: dict[str, float] = {}
    for name, report in (("plan", plan), ("departments", departments)):
        for _ in range(5):
            await report()
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await report()
            samples.append(time.perf_counter() - started)
        timings[name] = statistics.median(samples) * 1000
    return timings


@dataclass(frozen=True)
class Throughput:
    workers: int
    events: int
    seconds: float
    retries: int

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


async def consume(settings: Settings, workers: int) -> Throughput:
    """The 10,000 events through the consumer's transaction, `workers` at a time, on a throwaway database."""
    events = [event.to_bytes() for event in _first_phase_events(random.Random(2024))]
    async with _throwaway_database(settings, pool_size=workers) as (_url, pool):
        await migrate(pool, SCHEMA, MIGRATIONS_DIR)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in events:
            queue.put_nowait(body)
        retries = 0

        async def worker() -> None:
            nonlocal retries
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    try:
                        outcome, _, reason = await process(pool, handlers.subscription, body)
                    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                        retries += 1
                        continue
                    assert outcome == "processed", (outcome, reason)
                    break

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        seconds = time.perf_counter() - started
        async with pool.acquire() as conn:
            projected = await conn.fetchval("SELECT count(*) FROM projected_event")
        assert projected == len(events), (projected, len(events))
    return Throughput(workers, len(events), seconds, retries)


@asynccontextmanager
async def _throwaway_database(settings: Settings, pool_size: int) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    server = settings.database_url_of("reporting").rsplit("/", 1)[0]
    name = f"dx_bench_{uuid.uuid4().hex[:10]}"
    url = f"{server}/{name}"
    await ensure_database(url)
    pool = await create_pool(url, SCHEMA, min_size=1, max_size=pool_size)
    try:
        yield url, pool
    finally:
        await pool.close()
        admin = await asyncpg.connect(f"{server}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def bench(settings: Settings, total_events: int) -> dict[str, dict[str, float]]:
    rng = random.Random(2024)
    async with _throwaway_database(settings, pool_size=4) as (url, pool):
        await migrate(pool, SCHEMA, MIGRATIONS_DIR)
        started = time.perf_counter()
        projected = await _project(pool, _first_phase_events(rng))
        print(
            f"projected {projected:,} events through the consumer's code path in {time.perf_counter() - started:.1f}s"
        )
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE")
        results = {f"{projected:,}": await _latency(pool, settings)}
        started = time.perf_counter()
        await _bulk_completions(url, total_events - projected, rng)
        async with pool.acquire() as conn:
            logged = await conn.fetchval("SELECT count(*) FROM event_log")
        print(f"loaded {logged - projected:,} more events with COPY in {time.perf_counter() - started:.1f}s")
        results[f"{logged:,}"] = await _latency(pool, settings)
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dx_bench reporting", description="Report latency after 10,000 and after N events."
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--consume-only", action="store_true", help="only the consumer's events per second")
    parser.add_argument("--workers", type=int, nargs="*", help="concurrent consumers (default: prefetch)")
    arguments = parser.parse_args(argv)
    if arguments.events <= FIRST_PHASE and not arguments.consume_only:
        parser.error(
            f"--events must be more than {FIRST_PHASE:,}: the reports are timed after {FIRST_PHASE:,} and after it"
        )
    settings = get_settings()
    if arguments.consume_only:
        for workers in arguments.workers or [min(settings.prefetch, settings.pool_max_size)]:
            result = asyncio.run(consume(settings, workers))
            print(
                f"consumed {result.events:,} events with {workers:>2} workers in {result.seconds:.1f}s: "
                f"{result.per_second:,.0f} events/s ({result.retries} retried after a deadlock)"
            )
        return
    results = asyncio.run(bench(settings, arguments.events))
    (small, small_ms), (large, large_ms) = results.items()
    print(f"{'report':<12} {'after ' + small + ' events':>24} {'after ' + large + ' events':>26} {'ratio':>7}")
    for report in ("plan", "departments"):
        ratio = large_ms[report] / small_ms[report]
        print(f"{report:<12} {small_ms[report]:>21.2f} ms {large_ms[report]:>23.2f} ms {ratio:>7.2f}")


if __name__ == "__main__":
    main()
