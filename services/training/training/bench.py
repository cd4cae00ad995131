"""Benchmark: e-learning webhook completions accepted per second against the real database.

    uv run python -m training.bench [--deliveries 3000] [--concurrency 32]

Starts the training service with uvicorn (one process) on a throwaway database `dx_bench_<random>` on
127.0.0.1 and a throwaway exchange and queue names on the local RabbitMQ, schedules one session, and
posts signed completion documents (each a different person, so each is a new completion) from
`concurrency` concurrent clients. The outbox relay runs during the measurement, publishing to the
throwaway exchange. Everything it created is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import aio_pika
import asyncpg
import httpx

from training.webhook_signing import sign

ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="
SESSION_ID = "BENCH-EL-001"


@dataclass(frozen=True)
class Throwaway:
    tag: str
    database: str
    port: int

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.database}"

    @property
    def exchange(self) -> str:
        return f"dx.events.{self.tag}"

    @property
    def dead_letter_exchange(self) -> str:
        return f"dx.dead-letter.{self.tag}"

    @property
    def queue_prefix(self) -> str:
        return f"{self.tag}."

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DX_DATABASE_URL": self.database_url,
            "DX_AMQP_URL": AMQP_URL,
            "DX_EXCHANGE": self.exchange,
            "DX_DEAD_LETTER_EXCHANGE": self.dead_letter_exchange,
            "DX_QUEUE_PREFIX": self.queue_prefix,
            "DX_WEBHOOK_SECRETS": SECRET,
            "DX_LOG_LEVEL": "WARNING",
            "DX_POOL_MAX_SIZE": "20",
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_service(throwaway: Throwaway) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "training.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(throwaway.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=throwaway.environment(),
    )


async def _wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError("the training service exited during start-up")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the training service did not become ready")


def _signed_delivery(number: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "completion",
            "session_id": SESSION_ID,
            "staff_id": f"B{number:06d}",
            "occurred_at": "2025-06-01T10:00:00+09:00",
            "success": True,
            "score": 0.9,
        }
    ).encode()
    return body, {**sign(SECRET, body, f"bench_{uuid.uuid4().hex}"), "content-type": "application/json"}


async def _load(client: httpx.AsyncClient, deliveries: int, concurrency: int, offset: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    numbers = iter(range(offset, offset + deliveries))

    async def worker() -> None:
        for number in numbers:
            body, headers = _signed_delivery(number)
            response = await client.post("/webhooks/elearning", content=body, headers=headers)
            statuses[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _unpublished(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM training.outbox WHERE published_at IS NULL")
    return count


async def run(deliveries: int, concurrency: int) -> None:
    throwaway = Throwaway(
        tag=f"bench_{uuid.uuid4().hex[:10]}", database=f"dx_bench_{uuid.uuid4().hex[:10]}", port=_free_port()
    )
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    await admin.execute(f'CREATE DATABASE "{throwaway.database}"')
    server = _start_service(throwaway)
    try:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{throwaway.port}", limits=limits, timeout=60
        ) as client:
            await _wait_ready(client, server)
            scheduled = await client.post(
                "/api/v1/sessions",
                json={
                    "session_id": SESSION_ID,
                    "fiscal_year": 2025,
                    "method": "e_learning",
                    "audience": "all_staff",
                    "title": "ベンチマーク",
                    "move_on": "completed",
                },
            )
            scheduled.raise_for_status()
            await _load(client, min(200, deliveries), concurrency, offset=900_000)  # warm-up, not measured
            started = time.perf_counter()
            statuses = await _load(client, deliveries, concurrency, offset=0)
            accepted_in = time.perf_counter() - started
        conn = await asyncpg.connect(throwaway.database_url)
        try:
            completions = await conn.fetchval("SELECT count(*) FROM training.completions WHERE staff_id NOT LIKE 'B9%'")
            for _ in range(2400):
                if not await _unpublished(conn):
                    break
                await asyncio.sleep(0.05)
            drained_in = time.perf_counter() - started
            left = await _unpublished(conn)
        finally:
            await conn.close()
        print(f"deliveries: {deliveries}, concurrency: {concurrency}, statuses: {dict(statuses)}")
        print(f"completions recorded: {completions}")
        print(
            f"webhook completions accepted per second: {deliveries / accepted_in:.0f} "
            f"({accepted_in:.2f} s, outbox relay running)"
        )
        print(
            f"completions accepted and published to RabbitMQ per second: {deliveries / drained_in:.0f} "
            f"({drained_in:.2f} s until the outbox was empty; {left} left)"
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        await admin.execute(f'DROP DATABASE IF EXISTS "{throwaway.database}" WITH (FORCE)')
        await admin.close()
        await _remove_bus_names(throwaway)


async def _remove_bus_names(throwaway: Throwaway) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (f"{throwaway.queue_prefix}training.rosters", f"{throwaway.queue_prefix}training.rosters.dlq"):
            await channel.queue_delete(queue)
        for exchange in (throwaway.exchange, throwaway.dead_letter_exchange):
            await channel.exchange_delete(exchange)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.deliveries, arguments.concurrency))


if __name__ == "__main__":
    main()
