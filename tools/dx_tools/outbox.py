"""Operators' command for a service's dead outbox rows (events the broker kept refusing).

    python -m dx_tools.outbox list --service training
    python -m dx_tools.outbox republish EVENT_ID --service training [--drop-correlation-id]
    python -m dx_tools.outbox discard EVENT_ID --service training

`list` shows the waiting and the dead events (id, routing key, attempts, age, last error — never a
payload). `republish` moves a dead row back into the outbox, where the relay publishes it at once
(`--drop-correlation-id` when the correlation id itself was refused); `discard` deletes it. Both are
recorded in the log with the operator's user name.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dx_shared.database import check_schema_name
from dx_shared.logging import configure_logging, get_logger
from dx_shared.outbox import notify_channel
from dx_shared.settings import Settings, get_settings

log = get_logger("dx_tools.outbox")


@dataclass(frozen=True)
class DeadRow:
    event_id: str
    routing_key: str
    attempts: int
    created_at: datetime
    dead_at: datetime
    last_error: str


async def dead_rows(conn: asyncpg.Connection, service: str) -> list[DeadRow]:
    schema = check_schema_name(service)
    rows = await conn.fetch(
        f'SELECT event_id, routing_key, attempts, created_at, dead_at, last_error FROM "{schema}".outbox_dead'
        " ORDER BY dead_at"
    )
    return [DeadRow(**dict(row.items())) for row in rows]


async def waiting(conn: asyncpg.Connection, service: str) -> tuple[int, float]:
    """How many events wait to be published, and the age in seconds of the oldest."""
    schema = check_schema_name(service)
    row = await conn.fetchrow(
        "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age"
        f' FROM "{schema}".outbox WHERE published_at IS NULL'
    )
    assert row is not None
    return int(row["n"]), float(row["age"])


async def republish(conn: asyncpg.Connection, service: str, event_id: str, *, drop_correlation_id: bool) -> bool:
    schema = check_schema_name(service)
    async with conn.transaction():
        moved = await conn.fetchval(
            f'WITH dead AS (DELETE FROM "{schema}".outbox_dead WHERE event_id = $1 RETURNING *)'
            f' INSERT INTO "{schema}".outbox (event_id, routing_key, body, correlation_id, created_at)'
            " SELECT event_id, routing_key, body, CASE WHEN $2 THEN NULL ELSE correlation_id END, created_at"
            " FROM dead ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event_id,
            drop_correlation_id,
        )
        if moved:
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))
    if moved:
        log.warning("outbox_dead_republished", service=service, event_id=event_id, operator=getpass.getuser())
    return bool(moved)


async def discard(conn: asyncpg.Connection, service: str, event_id: str) -> bool:
    schema = check_schema_name(service)
    status: str = await conn.execute(f'DELETE FROM "{schema}".outbox_dead WHERE event_id = $1', event_id)
    gone = status.split()[-1] != "0"
    if gone:
        log.warning("outbox_dead_discarded", service=service, event_id=event_id, operator=getpass.getuser())
    return gone


async def run(args: argparse.Namespace, settings: Settings) -> int:
    own: str | None = getattr(settings, f"{args.service}_database_url", None)
    conn = await asyncpg.connect(own or settings.database_url)
    try:
        if args.command == "list":
            count, age = await waiting(conn, args.service)
            print(f"{args.service}: {count} event(s) waiting to be published, the oldest for {age:.0f}s")
            rows = await dead_rows(conn, args.service)
            print(f"{len(rows)} dead event(s):")
            for row in rows:
                print(
                    f"  {row.event_id}  {row.routing_key}  attempts={row.attempts}"
                    f"  committed={row.created_at.isoformat()}  dead={row.dead_at.isoformat()}"
                    f"  error={row.last_error[:200]}"
                )
            return 0
        if args.command == "republish":
            done = await republish(conn, args.service, args.event_id, drop_correlation_id=args.drop_correlation_id)
        else:
            done = await discard(conn, args.service, args.event_id)
        if not done:
            print(f"no dead event {args.event_id} in {args.service}", file=sys.stderr)
            return 1
        print(f"{'republished' if args.command == 'republish' else 'discarded'} {args.event_id}")
        return 0
    finally:
        await conn.close()


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m dx_tools.outbox", description=__doc__.splitlines()[0])
    sub = parse.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="events waiting to be published, and the dead ones")
    listing.add_argument("--service", required=True)
    again = sub.add_parser("republish", help="move a dead event back into the outbox")
    again.add_argument("event_id")
    again.add_argument("--service", required=True)
    again.add_argument("--drop-correlation-id", action="store_true", help="publish it without its correlation id")
    drop = sub.add_parser("discard", help="delete a dead event for good")
    drop.add_argument("event_id")
    drop.add_argument("--service", required=True)
    return parse


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings or get_settings()
    configure_logging("dx-tools", settings.log_level, settings.log_json)
    return asyncio.run(run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
