"""Backup and restore of one service's schema with pg_dump / pg_restore.

    python -m dx_tools.backup dump --service training [--out training.dump]
    python -m dx_tools.backup restore --service training training.dump [--force]

A dump is pg_dump's custom format of the service's schema only (its tables, the outbox and the inbox,
`schema_migrations`), taken in one transaction snapshot: the outbox and the inbox agree with the state
they belong to. Events in the outbox that were not yet published are published again after a restore;
consumers deduplicate by event id, so that is safe.

Restore goes into the database the service is configured for (`DX_<SERVICE>_DATABASE_URL`, else
`DX_DATABASE_URL`; created if missing) and refuses a schema that already has tables unless `--force`,
which drops that schema first. A dump of one service is refused when restored as another.

The PostgreSQL client programs come from `DX_PG_BIN_DIR` when set, else PATH, else the newest
/usr/lib/postgresql/*/bin. They must be at least the server's major version.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from dx_shared.database import check_schema_name, ensure_database
from dx_shared.settings import Settings, get_settings

SERVICES = ("nomination", "training", "progression", "reporting")


class BackupError(Exception):
    """A dump or restore that cannot go ahead; the message says why."""


@dataclass(frozen=True)
class Connection:
    """A libpq connection URL without its password, and the password for PGPASSWORD (never on argv)."""

    url: str
    password: str | None


def split_password(database_url: str) -> Connection:
    parts = urlsplit(database_url)
    if parts.password is None:
        return Connection(database_url, None)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return Connection(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(parts.password))


def dump_command(program: str, connection: Connection, schema: str, out: Path) -> list[str]:
    """pg_dump of one schema in custom format; pg_dump reads every table in one snapshot."""
    return [
        program,
        "--format=custom",
        f"--schema={check_schema_name(schema)}",
        "--no-owner",
        "--no-privileges",
        f"--file={out}",
        f"--dbname={connection.url}",
    ]


def restore_command(program: str, connection: Connection, dump: Path) -> list[str]:
    """pg_restore in one transaction: the schema appears whole or not at all."""
    return [
        program,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={connection.url}",
        str(dump),
    ]


def schemas_in_listing(listing: str) -> set[str]:
    """The schemas a `pg_restore --list` table of contents creates (lines like `5; 2615 16386 SCHEMA - training`)."""
    found: set[str] = set()
    for line in listing.splitlines():
        if line.startswith(";"):
            continue
        fields = line.split()
        if len(fields) >= 6 and fields[3] == "SCHEMA" and fields[4] == "-":
            found.add(fields[5])
    return found


def default_dump_path(service: str, now: datetime) -> Path:
    return Path(f"{service}-{now.strftime('%Y%m%dT%H%M%SZ')}.dump")


def find_program(name: str, bin_dir: str | None = None) -> str:
    if bin_dir:
        candidate = Path(bin_dir) / name
        if candidate.exists():
            return str(candidate)
        raise BackupError(f"{name} not found in DX_PG_BIN_DIR={bin_dir}")
    on_path = shutil.which(name)
    if on_path:
        return on_path
    installed = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(Path(path).parts[-3]), reverse=True
    )
    if installed:
        return installed[0]
    raise BackupError(f"{name} not found: install the PostgreSQL client programs or set DX_PG_BIN_DIR")


def _run(command: list[str], connection: Connection) -> str:
    env = dict(os.environ)
    if connection.password is not None:
        env["PGPASSWORD"] = connection.password
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


async def _table_count(database_url: str, schema: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema)
        return count
    finally:
        await conn.close()


async def _drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{check_schema_name(schema)}" CASCADE')
    finally:
        await conn.close()


async def dump(settings: Settings, service: str, out: Path | None = None) -> Path:
    database_url = settings.database_url_of(service)
    if await _table_count(database_url, service) == 0:
        raise BackupError(f"the {service} schema has no tables in its database: nothing to dump")
    target = out or default_dump_path(service, datetime.now(UTC))
    connection = split_password(database_url)
    _run(dump_command(find_program("pg_dump", settings.pg_bin_dir), connection, service, target), connection)
    return target


async def restore(settings: Settings, service: str, dump_file: Path, *, force: bool = False) -> None:
    if not dump_file.is_file():
        raise BackupError(f"no such dump file: {dump_file}")
    listing = _run([find_program("pg_restore", settings.pg_bin_dir), "--list", str(dump_file)], Connection("", None))
    schemas = schemas_in_listing(listing)
    if schemas != {service}:
        raise BackupError(f"{dump_file} holds schema(s) {sorted(schemas)}, not the {service} schema")
    database_url = settings.database_url_of(service)
    await ensure_database(database_url)
    if await _table_count(database_url, service) > 0:
        if not force:
            raise BackupError(
                f"the {service} schema already has tables in the target database; "
                "restore into an empty database, or pass --force to replace it"
            )
        await _drop_schema(database_url, service)
    else:
        await _drop_schema(database_url, service)  # an empty schema left by a failed start would clash
    connection = split_password(database_url)
    _run(restore_command(find_program("pg_restore", settings.pg_bin_dir), connection, dump_file), connection)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dx_tools.backup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dumping = sub.add_parser("dump", help="pg_dump one service's schema (custom format, one snapshot)")
    dumping.add_argument("--service", required=True, choices=SERVICES)
    dumping.add_argument("--out", type=Path, help="the dump file (default <service>-<UTC time>.dump)")
    restoring = sub.add_parser("restore", help="pg_restore a dump into the service's (empty) database")
    restoring.add_argument("--service", required=True, choices=SERVICES)
    restoring.add_argument("file", type=Path)
    restoring.add_argument("--force", action="store_true", help="drop the service's schema first if it has tables")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "dump":
            written = asyncio.run(dump(settings, args.service, args.out))
            print(f"{args.service}: dumped to {written}")
        else:
            asyncio.run(restore(settings, args.service, args.file, force=args.force))
            print(f"{args.service}: restored from {args.file}")
    except BackupError as error:
        print(f"{args.service}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
