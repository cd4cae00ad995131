"""Small operations commands used by `./dx`: reset the database, wait for readiness, print where to look."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import asyncpg
import httpx

from dx_shared.settings import DEMO_WEBHOOK_SECRET, Settings, get_settings

SERVICES = ("nomination", "training", "progression", "reporting", "portal")
API_SERVICES = SERVICES[:4]


def service_url(settings: Settings, service: str) -> str:
    url: str = getattr(settings, f"{service}_url")
    return url


def service_databases(settings: Settings) -> list[str]:
    """Every distinct database the services use (one when none has a DX_<SERVICE>_DATABASE_URL)."""
    return sorted({settings.database_url_of(service) for service in SERVICES})


async def reset_database(settings: Settings) -> None:
    for url in service_databases(settings):
        base, name = url.rsplit("/", 1)
        name = name.split("?", 1)[0]
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        print(f"database {name} is new and empty")


def wait_ready(settings: Settings, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    with httpx.Client(timeout=2) as client:
        while pending and time.monotonic() < deadline:
            for service in sorted(pending):
                try:
                    if client.get(f"{service_url(settings, service)}/readyz").status_code == 200:
                        pending.discard(service)
                        print(f"  {service:<12} ready at {service_url(settings, service)}")
                except httpx.HTTPError:
                    pass
            if pending:
                time.sleep(0.5)
    if pending:
        print(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))} (see .run/logs/)", file=sys.stderr)
        return False
    return True


def where(settings: Settings) -> None:
    print()
    print("dx-talent is running — 青森県デジタル人財育成 管理システム")
    print()
    print(f"  >>> ポータル / the portal (start here): {settings.portal_url}/")
    print()
    for service in API_SERVICES:
        print(f"  {service:<12} API docs  : {service_url(settings, service)}/docs")
    print(f"  webhook (e-learning)     : {settings.training_url}/webhooks/elearning")
    if DEMO_WEBHOOK_SECRET in settings.webhook_secret_list:
        # To the operator's terminal only; the services never log it.
        print(f"  webhook secret (demo)    : {DEMO_WEBHOOK_SECRET}")
        print("    デモ用の署名鍵です。本番では DX_WEBHOOK_SECRETS を設定してください / set DX_WEBHOOK_SECRETS in production")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dx-tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reset-database", help="drop and recreate the services' databases")
    sub.add_parser("wait-ready", help="wait until every service answers /readyz")
    sub.add_parser("where", help="print the URLs of the running system")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "reset-database":
        asyncio.run(reset_database(settings))
    elif args.command == "wait-ready":
        return 0 if wait_ready(settings) else 1
    elif args.command == "where":
        where(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
