"""`python -m dx_bench e2e` runs the whole system with a tiny load, prints every figure it promises, and
leaves nothing behind (its database, its vhost, its processes) — also when interrupted with Ctrl-C.

Not a timed test: no figure's value is asserted, only that each is printed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from dx_bench.system import Ports, vhost_exists

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--quick",
    "--sustained-seconds", "1",
    "--sustained-max", "30",
    "--latency-seconds", "1",
    "--rates", "10",
    "--minimal-seconds", "1",
    "--clients", "4",
    "--pool-max-size", "4",
]  # fmt: skip
NAMES = re.compile(r"database (?P<database>dx_bench_[0-9a-f]+), vhost (?P<vhost>dx-bench-[0-9a-f]+)")


def _free_port_base() -> int:
    """DX_BENCH_PORT_BASE when set (a machine whose ports are shared out), else a block that is free now."""
    if os.environ.get("DX_BENCH_PORT_BASE"):
        return int(os.environ["DX_BENCH_PORT_BASE"])
    for base in range(20000, 30000, 20):
        free = True
        for port in Ports(base).all():
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return base
    raise RuntimeError("no free block of ports")


def _bench(*arguments: str) -> subprocess.Popen[str]:
    if shutil.which("rabbitmqctl") is None or shutil.which("node") is None:
        pytest.skip("the benchmark needs rabbitmqctl (its vhost) and node (the identity provider)")
    return subprocess.Popen(
        [sys.executable, "-m", "dx_bench", "e2e", *arguments, "--port-base", str(_free_port_base())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _database_exists(database: str) -> bool:
    admin = await asyncpg.connect(os.environ.get("DX_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await admin.close()


async def test_the_end_to_end_benchmark_prints_every_figure_and_removes_what_it_made() -> None:
    run = _bench(*TINY)
    out, err = run.communicate(timeout=840)
    assert run.returncode == 0, f"{out}\n{err[-4000:]}"
    names = NAMES.search(out)
    assert names, out
    for figure in (
        "load average at start",
        "minimal pipeline (consume → dedupe insert + upsert → multi-ack after commit)",
        "webhook completions accepted (2xx):",
        "completions reflected in the plan report, sustained:",
        "× the minimal pipeline",
        "CPU per completion, ms (service process + its PostgreSQL backends):",
        "  nomination ",
        "  training ",
        "  progression ",
        "  reporting ",
        "  all ",
        "  broker ",
        "  benchmark ",
        "  machine ",
        "database round trips (dx_db_round_trips_total):",
        "latency, webhook 2xx → visible, ms",
        "10/s offered",
        "50 % (",
        "plan report",
        "trainee report",
        "plan report polled every",
        "load average at end",
    ):
        assert figure in out, f"{figure!r} missing from:\n{out}"
    # Each round-trip figure is a number or n/a (the counter comes with the services' pools).
    trips = next(line for line in out.splitlines() if line.startswith("database round trips"))
    for service in ("training", "progression", "reporting", "nomination"):
        assert re.search(rf"{service} (n/a|[0-9.]+ per \w+)", trips), trips
    assert "sent" in err and "2xx" in err, "a progress line while it runs"
    assert not await _database_exists(names["database"]), "the database is dropped"
    assert not vhost_exists(names["vhost"]), "the vhost is deleted"


async def test_an_interrupted_benchmark_still_removes_its_database_and_vhost() -> None:
    run = _bench(*TINY)
    assert run.stdout is not None
    names = NAMES.search(run.stdout.readline())
    assert names
    deadline = time.monotonic() + 180
    while not (await _database_exists(names["database"]) and vhost_exists(names["vhost"])):
        assert run.poll() is None, run.stderr.read() if run.stderr else ""
        assert time.monotonic() < deadline, "the benchmark never made its database and vhost"
        await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)  # into the start of the services
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, f"{out}\n{err[-4000:]}"
    assert "interrupted" in err
    assert not await _database_exists(names["database"]), "the database is dropped"
    assert not vhost_exists(names["vhost"]), "the vhost is deleted"
