"""Benchmark: e-learning webhook completions accepted per second against the real database.

    uv run python -m dx_bench training [--deliveries 3000] [--concurrency 32] [--client sockets|httpx] [--workers 1]

Starts the training service with uvicorn (one process unless `--workers`) on a throwaway database
`dx_bench_<random>` on 127.0.0.1 and a throwaway exchange and queue names on the local RabbitMQ, schedules
one session, and posts signed completion documents (each a different person, so each is a new completion)
from `concurrency` concurrent clients, each over one kept-alive connection. The outbox relay runs during
the measurement, publishing to the throwaway exchange. Everything it created is removed afterwards.

The clients run on the same machine as the service, the database and the broker, and take a share of the
CPUs. The load average printed with the figure says how busy the machine was before the run, and the CPU
time the service process and its database connections spent per delivery is printed beside it: on a
shared machine that figure moves much less than the rate does. By default the clients write HTTP/1.1 by
hand on plain sockets, which costs little; `--client httpx` sends the same requests with httpx (the figures
before this option existed were measured that way), whose connection pool takes about one CPU core at
these rates and so lowers the figure on a two-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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

from dx_bench import measure
from dx_shared.contracts import Audience, Method, MoveOn
from dx_shared.database import create_pool
from dx_shared.settings import DEFAULT_PORTS
from training import handlers
from training.domain import Session
from training.webhook_signing import sign

ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="
SESSION_ID = "BENCH-EL-001"
POOL_MAX_SIZE = 20


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
            # a per-service database from the caller's environment must not pull the service elsewhere
            **{f"DX_{service.upper()}_DATABASE_URL": self.database_url for service in DEFAULT_PORTS},
            "DX_AMQP_URL": AMQP_URL,
            "DX_EXCHANGE": self.exchange,
            "DX_DEAD_LETTER_EXCHANGE": self.dead_letter_exchange,
            "DX_QUEUE_PREFIX": self.queue_prefix,
            "DX_WEBHOOK_SECRETS": SECRET,
            "DX_LOG_LEVEL": "WARNING",
            "DX_POOL_MAX_SIZE": str(POOL_MAX_SIZE),
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_service(throwaway: Throwaway, workers: int) -> subprocess.Popen[bytes]:
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
            "--workers",
            str(workers),
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


async def _load_with_httpx(client: httpx.AsyncClient, deliveries: int, concurrency: int, offset: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    numbers = iter(range(offset, offset + deliveries))

    async def worker() -> None:
        for number in numbers:
            body, headers = _signed_delivery(number)
            response = await client.post("/webhooks/elearning", content=body, headers=headers)
            statuses[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _load_with_sockets(port: int, deliveries: int, concurrency: int, offset: int) -> Counter[int]:
    """The same requests over one kept-alive connection per client, written by hand: httpx spends about
    a CPU core at this rate, which on a small machine is taken from the service being measured."""
    statuses: Counter[int] = Counter()
    numbers = iter(range(offset, offset + deliveries))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for number in numbers:
                body, headers = _signed_delivery(number)
                statuses[await _post(reader, writer, "/webhooks/elearning", body, headers)] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes, headers: dict[str, str]
) -> int:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _schedule_session(throwaway: Throwaway) -> None:
    """The session the deliveries complete, scheduled by the service's own handler on its database: the
    HTTP API would need a token from an identity provider, which this benchmark of the webhook does not run."""
    pool = await create_pool(throwaway.database_url, "training")
    try:
        await handlers.schedule(
            pool,
            Session(
                session_id=SESSION_ID,
                fiscal_year=2025,
                method=Method.E_LEARNING,
                audience=Audience.ALL_STAFF,
                title="ベンチマーク",
                move_on=MoveOn.COMPLETED,
            ),
        )
    finally:
        await pool.close()


async def _database_backends(admin: asyncpg.Connection, database: str) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    return [row["pid"] for row in rows]


def _processes(workers: int) -> str:
    return "one uvicorn process" if workers == 1 else f"{workers} uvicorn worker processes"


async def _unpublished(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM training.outbox WHERE published_at IS NULL")
    return count


async def run(deliveries: int, concurrency: int, client_kind: str, workers: int) -> None:
    load_before = os.getloadavg()[0]
    throwaway = Throwaway(
        tag=f"bench_{uuid.uuid4().hex[:10]}", database=f"dx_bench_{uuid.uuid4().hex[:10]}", port=_free_port()
    )
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    await admin.execute(f'CREATE DATABASE "{throwaway.database}"')
    server = _start_service(throwaway, workers)
    try:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{throwaway.port}", limits=limits, timeout=60
        ) as client:
            await _wait_ready(client, server)
            await _schedule_session(throwaway)
            if client_kind == "httpx":
                load = functools.partial(_load_with_httpx, client)
            else:
                load = functools.partial(_load_with_sockets, throwaway.port)
            await load(min(200, deliveries), concurrency, offset=900_000)  # warm-up, not measured
            service_processes = [server.pid, *measure.children(server.pid)]
            processes = [*service_processes, *await _database_backends(admin, throwaway.database)]
            cpu_before = [measure.cpu_seconds(pid) for pid in processes]
            started = time.perf_counter()
            statuses = await load(deliveries, concurrency, offset=0)
            accepted_in = time.perf_counter() - started
            cpu_used = [
                after - before
                for before, after in zip(cpu_before, [measure.cpu_seconds(pid) for pid in processes], strict=True)
            ]
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
        conditions = (
            f"{deliveries} deliveries, {concurrency} concurrent {client_kind} clients, outbox relay on, {_processes(workers)},"
            f" pool of {POOL_MAX_SIZE}, {os.cpu_count()} CPUs, load average {load_before:.1f} before the run"
        )
        print(f"statuses: {dict(statuses)}; completions recorded: {completions}")
        print(
            f"webhook completions accepted per second: {deliveries / accepted_in:.0f}  ({accepted_in:.2f} s; {conditions})"
        )
        print(
            f"CPU per delivery: service {1000 * sum(cpu_used[: len(service_processes)]) / deliveries:.2f} ms,"
            f" database {1000 * sum(cpu_used[len(service_processes) :]) / deliveries:.2f} ms"
            f" (its {len(cpu_used) - len(service_processes)} connections)"
        )
        print(
            f"accepted and published to RabbitMQ per second: {deliveries / drained_in:.0f}"
            f"  ({drained_in:.2f} s until the outbox was empty, {left} left)"
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dx_bench training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--client", choices=["sockets", "httpx"], default="sockets", help="how the load is sent (see the module doc)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each with its own relay)")
    arguments = parser.parse_args(argv)
    asyncio.run(run(arguments.deliveries, arguments.concurrency, arguments.client, arguments.workers))


if __name__ == "__main__":
    main()
