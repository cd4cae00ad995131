"""The four services as real processes (uvicorn), on a database and bus names of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from dx_shared.settings import Settings
from tests.support.identity import bearer, current_provider

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("nomination", "training", "progression", "reporting", "portal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As uvicorn binds: a port whose last connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def portal_port() -> int:
    """The port the test identity provider accepts the portal's redirects from (else any free one)."""
    wanted: int | None = getattr(current_provider(), "portal_port", None)
    return wanted if wanted is not None and _port_is_free(wanted) else free_port()


@dataclass
class RunningSystem:
    settings: Settings
    urls: dict[str, str]
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]]

    def all_running(self) -> bool:
        return all(process.poll() is None for process in self.processes)

    def url(self, service: str, path: str = "") -> str:
        return f"{self.urls[service]}{path}"

    @property
    def headers(self) -> dict[str, str]:
        """A DX-office person's Authorization header (every scope), fresh for each call's use."""
        return bearer()

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        """An HTTP client that acts as a DX-office person (pass headers= to act as someone else)."""
        headers = kwargs.pop("headers", None) or self.headers
        return httpx.AsyncClient(headers=headers, **kwargs)  # type: ignore[arg-type]


def system_environment(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DX_DATABASE_URL": settings.database_url,
            "DX_AMQP_URL": settings.amqp_url,
            "DX_EXCHANGE": settings.exchange,
            "DX_DEAD_LETTER_EXCHANGE": settings.dead_letter_exchange,
            "DX_QUEUE_PREFIX": settings.queue_prefix,
            **({"DX_QUEUE_EXPIRES_MS": str(settings.queue_expires_ms)} if settings.queue_expires_ms else {}),
            "DX_WEBHOOK_SECRETS": settings.webhook_secrets,
            "DX_OUTBOX_POLL_INTERVAL": "0.5",
            "DX_LOG_LEVEL": "INFO",
            # Several processes per service share one PostgreSQL (max_connections 100 by default).
            "DX_POOL_MAX_SIZE": os.environ.get("DX_POOL_MAX_SIZE", "4"),
            "DX_OIDC_ISSUER": settings.oidc_issuer,
            "DX_OIDC_AUDIENCE": settings.oidc_audience,
            "PYTHONPATH": str(ROOT),
        }
    )
    if settings.quorum_initial_group_size is not None:
        env["DX_QUORUM_INITIAL_GROUP_SIZE"] = str(settings.quorum_initial_group_size)
    env["DX_BROKER_RECONNECT_INTERVAL"] = str(settings.broker_reconnect_interval)
    for service in SERVICES:
        env[f"DX_{service.upper()}_DATABASE_URL"] = settings.database_url_of(service)
    for service, port in ports.items():
        env[f"DX_{service.upper()}_PORT"] = str(port)
        env[f"DX_{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
        # Replicas share the environment: each picks a free internal metrics port of its own.
        env[f"DX_{service.upper()}_METRICS_PORT"] = "0"
    return env


@contextlib.contextmanager
def running_system(settings: Settings, logs: Path, replicas: dict[str, int] | None = None) -> Iterator[RunningSystem]:
    """Starts every service (optionally some as several replicas on other ports) and waits until ready."""
    ports = {service: portal_port() if service == "portal" else free_port() for service in SERVICES}
    env = system_environment(settings, ports)
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    handles = []
    try:
        for service in SERVICES:
            for replica in range((replicas or {}).get(service, 1)):
                port = ports[service] if replica == 0 else free_port()
                log = (logs / f"{service}-{replica}.log").open("wb")
                handles.append(log)
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            f"{service}.main:app",
                            "--host",
                            "127.0.0.1",
                            "--port",
                            str(port),
                            "--no-access-log",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        _wait_ready(urls, processes, logs)
        yield RunningSystem(settings=settings, urls=urls, env=env, logs=logs, processes=processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in handles:
            handle.close()


def _wait_ready(urls: dict[str, str], processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 90
    pending = dict(urls)
    with httpx.Client(timeout=2) as client:
        while pending and time.monotonic() < deadline:
            if any(process.poll() is not None for process in processes):
                break
            for service, url in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{url}/readyz").status_code == 200:
                        del pending[service]
            time.sleep(0.3)
    if pending:
        tails = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}" for path in logs.glob("*.log"))
        raise RuntimeError(f"services not ready: {sorted(pending)}\n{tails}")
