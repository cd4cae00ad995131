"""asyncpg pools bound to one service's schema, and plain-SQL migrations applied in order.

Every schema also gets the shared tables: the inbox and outbox, and the append-only audit trail."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from dx_shared.audit import AUDIT_SQL
from dx_shared.logging import get_logger
from dx_shared.metrics import DB_ROUND_TRIPS

log = get_logger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# The messaging tables every service has in its own schema (inbox: consumed event ids, outbox:
# events committed with the state change and not yet confirmed by the broker, outbox_dead: events the
# broker kept refusing, set aside for an operator: `python -m dx_tools.outbox`).
MESSAGING_SQL = """
CREATE TABLE IF NOT EXISTS inbox (
    event_id     text PRIMARY KEY,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS outbox (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    body         bytea NOT NULL,
    correlation_id text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS outbox_dead (
    seq            bigint PRIMARY KEY,
    event_id       text NOT NULL UNIQUE,
    routing_key    text NOT NULL,
    body           bytea NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL,
    attempts       integer NOT NULL,
    last_error     text,
    dead_at        timestamptz NOT NULL DEFAULT now()
);
-- The W3C trace context of the request or handler that committed the event; the relay publishes in it.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent text;
"""


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _counting_round_trips(service: str) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    """The pool's `init`: the codecs, and a query logger that counts every statement the connection sends
    (`dx_db_round_trips_total{service}`; asyncpg calls it once per execute/fetch/executemany, BEGIN and
    COMMIT included — an `executemany` is one pipelined exchange, counted once)."""
    trips = DB_ROUND_TRIPS.labels(service)

    def count(_record: object) -> None:
        trips.inc()

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)
        conn.add_query_logger(count)

    return init


async def _reset_on_release(conn: asyncpg.Connection) -> None:
    # The services keep no session state (search_path is a server setting of the pool, locks are
    # transaction-scoped, LISTEN is held by the relay for the life of the service), so the full RESET ALL /
    # UNLISTEN round trip on every release is wasted; a connection left inside a transaction is rolled back.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10, service: str | None = None
) -> asyncpg.Pool:
    """A pool on `schema`; its statements count in `dx_db_round_trips_total{service}` (default: the schema)."""
    check_schema_name(schema)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={
            "search_path": f"{schema},public",
            "application_name": f"dx-{schema}",
            # The services' statements are prepared once and run thousands of times with arrays of ids
            # (unnest, = ANY): PostgreSQL's custom plans for them cost it more CPU in planning than in
            # executing, and the generic plan is the same index plan.
            "plan_cache_mode": "force_generic_plan",
        },
        init=_counting_round_trips(service or schema),
        reset=_reset_on_release,
    )
    return pool


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"dx-migrate:{schema}".encode()).digest()[:8], "big", signed=True)


async def migrate(pool: asyncpg.Pool, schema: str, migrations_dir: Path) -> list[str]:
    """Creates the schema, the messaging tables and applies every `NNN_name.sql` not yet recorded.

    An advisory lock serialises replicas that start at the same moment.
    """
    check_schema_name(schema)
    applied_now: list[str] = []
    files = sorted(path for path in migrations_dir.glob("*.sql")) if migrations_dir.exists() else []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}", public')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            async with conn.transaction():
                await conn.execute(MESSAGING_SQL)
                await conn.execute(AUDIT_SQL)
            done: dict[str, str] = {
                row["name"]: row["checksum"] for row in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for path in files:
                sql = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if path.name in done:
                    if done[path.name] != checksum:
                        log.warning("migration_changed_after_apply", migration=path.name, schema=schema)
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations(name, checksum) VALUES ($1, $2)", path.name, checksum
                    )
                applied_now.append(path.name)
                log.info("migration_applied", migration=path.name, schema=schema)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
            await conn.execute("RESET search_path")
    return applied_now


async def ensure_database(database_url: str) -> None:
    """Creates the database named in the URL if it does not exist (connecting to `postgres`)."""
    target = database_url.rsplit("/", 1)
    name = target[1].split("?", 1)[0]
    admin_url = f"{target[0]}/postgres"
    conn: Any = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()
