"""Roster import throughput against a real PostgreSQL: `uv run python -m dx_bench nomination [--rows 10000]`.

Creates a throwaway database `dx_bench_<random>` on the server of DX_NOMINATION_DATABASE_URL (else DX_DATABASE_URL) (dropped afterwards),
generates a Shift_JIS roster with Japanese headers, and times the import use case end to end (decode,
parse, validate, diff, write, outbox) for a first import, an identical re-import and one with 10 %
of the rows changed. The broker is not involved: the outbox row is written, not relayed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from dx_shared.database import create_pool, migrate
from dx_shared.settings import get_settings
from nomination import use_cases
from nomination.main import MIGRATIONS_DIR

SCHEMA = "nomination"
DEPARTMENTS = 200


def departments_csv() -> bytes:
    lines = ["所属コード,所属名,部局,有効"]
    lines += [f"{code:04d},所属{code:04d},部局{code % 12:02d},1" for code in range(1, DEPARTMENTS + 1)]
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def roster_csv(rows: int, *, moved_every: int = 0) -> bytes:
    lines = ["職員番号,氏名,所属コード,管理職"]
    for index in range(rows):
        department = index % DEPARTMENTS + 1
        if moved_every and index % moved_every == 0:
            department = department % DEPARTMENTS + 1
        lines.append(f"{index + 100000:06d},青森　職員{index},{department:04d},{1 if index % 15 == 0 else 0}")
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


async def timed(label: str, rows: int, action: Callable[[], Awaitable[use_cases.ImportReport]]) -> float:
    started = time.perf_counter()
    report = await action()
    elapsed = time.perf_counter() - started
    rate = rows / elapsed
    print(
        f"{label:<34} {rows:>6} rows in {elapsed * 1000:8.1f} ms = {rate:>9,.0f} rows/s "
        f"(added {len(report.added)}, changed {len(report.changed)}, unchanged {report.unchanged})"
    )
    return rate


async def bench(rows: int) -> None:
    server_url = get_settings().database_url_of("nomination").rsplit("/", 1)[0]
    name = f"dx_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{server_url}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pool = await create_pool(f"{server_url}/{name}", SCHEMA, min_size=1, max_size=2)
        try:
            await migrate(pool, SCHEMA, MIGRATIONS_DIR)
            await use_cases.import_departments(pool, 2024, departments_csv(), dry_run=False)
            first, same, changed = roster_csv(rows), roster_csv(rows), roster_csv(rows, moved_every=10)
            print(
                f"database {name} (dropped afterwards); roster: {rows} rows, {len(first) / 1024:.0f} KiB Shift_JIS, {DEPARTMENTS} departments"
            )
            await timed(
                "dry run (validate only)", rows, lambda: use_cases.import_staff(pool, 2024, first, dry_run=True)
            )
            await timed(
                "first import (all added)", rows, lambda: use_cases.import_staff(pool, 2024, first, dry_run=False)
            )
            await timed(
                "identical re-import (no-op)", rows, lambda: use_cases.import_staff(pool, 2024, same, dry_run=False)
            )
            await timed(
                "re-import, 10% moved", rows, lambda: use_cases.import_staff(pool, 2024, changed, dry_run=False)
            )
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dx_bench nomination", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000)
    asyncio.run(bench(parser.parse_args(argv).rows))


if __name__ == "__main__":
    main()
