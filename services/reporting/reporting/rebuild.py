"""Rebuild every projection from the event log into a fresh schema and swap it in atomically.

    uv run python -m reporting.rebuild

The service keeps serving meanwhile: the fresh schema is filled beside the live one, then one
transaction blocks new events (a lock on the event log), applies the events that arrived during the
rebuild, and moves the live projection tables out and the rebuilt ones in. Readers wait for that
transaction only, and see either the old tables or the new ones.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from tqdm import tqdm

from dx_shared.database import check_schema_name, create_pool, migrate
from dx_shared.envelope import CloudEvent
from dx_shared.logging import configure_logging, get_logger
from dx_shared.settings import Settings, get_settings
from reporting.projections import apply_event
from reporting.repository import ProjectionStore

log = get_logger(__name__)

SCHEMA = "reporting"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BATCH_SIZE = 500


def projection_migrations() -> list[Path]:
    """The projection tables are defined only in migrations named *_projections*.sql."""
    return sorted(MIGRATIONS_DIR.glob("*_projections*.sql"))


@dataclass(frozen=True)
class RebuildResult:
    events: int
    caught_up: int
    seconds: float


async def _apply_rows(conn: asyncpg.Connection, rows: list[Any]) -> None:
    store = ProjectionStore(conn)
    async with conn.transaction():
        for row in rows:
            event = CloudEvent.model_validate(row["body"])
            payload = event.payload()
            if payload is not None:
                await apply_event(store, event, payload, row["received_at"])


_UNAPPLIED = """SELECT e.seq, e.body, e.received_at FROM {live}.event_log e
                WHERE NOT EXISTS (SELECT 1 FROM projected_event p WHERE p.event_id = e.event_id)
                ORDER BY e.seq"""


async def _catch_up(conn: asyncpg.Connection, live: str) -> int:
    rows = await conn.fetch(_UNAPPLIED.format(live=live))
    for start in range(0, len(rows), BATCH_SIZE):
        await _apply_rows(conn, list(rows[start:start + BATCH_SIZE]))
    return len(rows)


async def _swap(conn: asyncpg.Connection, live: str, fresh: str, retired: str) -> int:
    async with conn.transaction():
        await conn.execute(f"LOCK TABLE {live}.event_log IN EXCLUSIVE MODE")
        caught_up = await _catch_up(conn, live)
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", fresh)]
        await conn.execute(f"CREATE SCHEMA {retired}")
        for table in tables:
            await conn.execute(f"ALTER TABLE IF EXISTS {live}.{table} SET SCHEMA {retired}")
            await conn.execute(f"ALTER TABLE {fresh}.{table} SET SCHEMA {live}")
        await conn.execute(f"DROP SCHEMA {retired} CASCADE")
        await conn.execute(f"DROP SCHEMA {fresh}")
    return caught_up


async def rebuild(settings: Settings, *, schema: str = SCHEMA, progress: bool = True) -> RebuildResult:
    live = check_schema_name(schema)
    fresh, retired = f"{live}_rebuild", f"{live}_retired"
    started = time.perf_counter()
    pool = await create_pool(settings.database_url_of("reporting"), live, min_size=2, max_size=2)
    try:
        await migrate(pool, live, MIGRATIONS_DIR)
        async with pool.acquire() as reader, pool.acquire() as writer:
            await writer.execute(f"DROP SCHEMA IF EXISTS {fresh} CASCADE")
            await writer.execute(f"DROP SCHEMA IF EXISTS {retired} CASCADE")
            await writer.execute(f"CREATE SCHEMA {fresh}")
            await writer.execute(f"SET search_path TO {fresh}")
            for path in projection_migrations():
                await writer.execute(path.read_text(encoding="utf-8"))
            total = await reader.fetchval(f"SELECT count(*) FROM {live}.event_log")
            replayed = 0
            with tqdm(total=total, unit="event", desc="rebuild", disable=not progress) as bar:
                async with reader.transaction(isolation="repeatable_read", readonly=True):
                    cursor = reader.cursor(
                        f"SELECT seq, body, received_at FROM {live}.event_log ORDER BY seq", prefetch=BATCH_SIZE
                    )
                    batch: list[Any] = []
                    async for row in cursor:
                        batch.append(row)
                        if len(batch) >= BATCH_SIZE:
                            await _apply_rows(writer, batch)
                            replayed += len(batch)
                            bar.update(len(batch))
                            batch = []
                    if batch:
                        await _apply_rows(writer, batch)
                        replayed += len(batch)
                        bar.update(len(batch))
            caught_up = await _catch_up(writer, live)
            caught_up += await _swap(writer, live, fresh, retired)
            await writer.execute("RESET search_path")
    finally:
        await pool.close()
    result = RebuildResult(events=replayed, caught_up=caught_up, seconds=round(time.perf_counter() - started, 3))
    log.info("projections_rebuilt", events=result.events, caught_up=result.caught_up, seconds=result.seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Rebuild the reporting projections from the event log.")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    arguments = parser.parse_args()
    settings = get_settings()
    configure_logging("reporting", settings.log_level, settings.log_json)
    result = asyncio.run(rebuild(settings, progress=not arguments.quiet))
    print(f"rebuilt from {result.events} events (+{result.caught_up} arriving meanwhile) in {result.seconds}s")


if __name__ == "__main__":
    main()
