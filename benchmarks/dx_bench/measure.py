"""What the benchmark reads from the machine: CPU time of processes (/proc), the services' PostgreSQL
backends (pg_stat_activity), Prometheus counters from the services' metrics ports, and percentiles."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence

import asyncpg
import httpx

ROUND_TRIPS = "dx_db_round_trips_total"
EVENTS_CONSUMED = "dx_events_consumed_total"


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pids() -> list[int]:
    """The RabbitMQ node's processes on this machine (`beam.smp`): the broker every service talks to."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "beam.smp":
                        found.append(int(entry))
            except OSError:
                continue
    return found


def machine_busy_seconds() -> float:
    """CPU time every process of the machine spent so far, all CPUs together (/proc/stat: not idle, not
    waiting for I/O)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as found:
            return [int(child) for child in found.read().split()]
    except OSError:
        return []


async def backends(admin: asyncpg.Connection, database: str, services: Iterable[str]) -> dict[str, list[int]]:
    """PostgreSQL backend pids of each service, by its application_name (`dx-<service>`, `dx-<service>-…`)."""
    rows = await admin.fetch(
        "SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        database,
    )
    found: dict[str, list[int]] = {service: [] for service in services}
    for row in rows:
        name = row["application_name"] or ""
        for service in found:
            if name == f"dx-{service}" or name.startswith(f"dx-{service}-"):
                found[service].append(row["pid"])
    return found


def read(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    return {service: {pid: cpu_seconds(pid) for pid in found} for service, found in pids.items()}


def used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds spent between two readings; a pid seen only at the end counts from zero."""
    return {
        service: sum(seconds - before.get(service, {}).get(pid, 0.0) for pid, seconds in after[service].items())
        for service in after
    }


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})?\s+(?P<value>\S+)")


async def counter_total(client: httpx.AsyncClient, url: str, name: str) -> float | None:
    """The sum of a counter's samples on a Prometheus page (None when the page or the counter is absent)."""
    try:
        response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    total: float | None = None
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] in (name, f"{name.removesuffix('_total')}_total"):
            total = (total or 0.0) + float(match["value"])
    return total


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0…1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
