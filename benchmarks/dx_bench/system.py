"""A throw-away system for a benchmark: its own database and RabbitMQ vhost, the local identity provider
and the four services as processes, all on ports given by the caller; `stop` removes every trace of it,
and is safe to call at any point of the start (or twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

from dx_shared.client_credentials import client_token
from dx_shared.settings import Settings
from dx_tools.idp import DEFAULT_AUDIENCE, IDP_DIR, client_secret, ensure_node_modules, write_users
from dx_tools.idp import wait as wait_for_issuer

SERVICES = ("nomination", "training", "progression", "reporting")
# Not a production secret: it signs the benchmark's own webhook deliveries to its own throw-away service.
WEBHOOK_SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="
# A client-credentials client of deploy/idp/clients.json with the DX office's role and every scope.
CLIENT_ID = "dx-loader"


@dataclass(frozen=True)
class Ports:
    """idp = base, the services' HTTP ports base+1…, their metrics ports base+11…"""

    base: int

    @property
    def idp(self) -> int:
        return self.base

    def http(self, service: str) -> int:
        return self.base + 1 + SERVICES.index(service)

    def metrics(self, service: str) -> int:
        return self.base + 11 + SERVICES.index(service)

    def all(self) -> list[int]:
        return [self.idp, *(self.http(s) for s in SERVICES), *(self.metrics(s) for s in SERVICES)]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url.split()[0])
    return urlunsplit(parts._replace(path=f"/{quote(vhost, safe='')}"))


@dataclass
class ThrowawaySystem:
    admin_database_url: str
    amqp_url: str
    ports: Ports
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dx-bench-")))
    database_created: bool = False
    vhost_created: bool = False
    token: str = ""
    service_settings: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"dx_bench_{self.tag}"

    @property
    def vhost(self) -> str:
        return f"dx-bench-{self.tag}"

    @property
    def database_url(self) -> str:
        return _with_database(self.admin_database_url, self.database)

    @property
    def bus_url(self) -> str:
        return _with_vhost(self.amqp_url, self.vhost)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.ports.idp}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.http(service)}"

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.metrics(service)}/metrics"

    # -- start ----------------------------------------------------------------------------------
    async def start(self, pool_max_size: int) -> None:
        busy = [port for port in self.ports.all() if not _port_is_free(port)]
        if busy:
            raise RuntimeError(f"ports in use: {busy} (choose another --port-base)")
        admin = await asyncpg.connect(self.admin_database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
            self.database_created = True
        finally:
            await admin.close()
        # The rest waits on other processes: in a thread, so the caller's progress line keeps moving.
        await asyncio.to_thread(self._start_processes, pool_max_size)

    def _start_processes(self, pool_max_size: int) -> None:
        _rabbitmqctl("add_vhost", self.vhost)
        self.vhost_created = True
        user = urlsplit(self.amqp_url.split()[0]).username or "guest"
        _rabbitmqctl("set_permissions", "-p", self.vhost, user, ".*", ".*", ".*")
        self._start_idp()
        wait_for_issuer(self.issuer, timeout=60)
        self.token = client_token(
            Settings(oidc_issuer=self.issuer), client_id=CLIENT_ID, secret=client_secret(CLIENT_ID)
        )
        environment = self._service_environment(pool_max_size)
        for service in SERVICES:
            self._spawn(
                service,
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"{service}.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports.http(service)),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                environment,
            )
        self._wait_ready()

    def _start_idp(self) -> None:
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed (apt-get install nodejs); the identity provider needs it")
        users = self.workdir / "users.json"
        write_users(users)
        environment = {
            **os.environ,
            "DX_IDP_ISSUER": self.issuer,
            "DX_IDP_PORT": str(self.ports.idp),
            "DX_IDP_DATA_DIR": str(self.workdir / "idp"),
            "DX_IDP_USERS_FILE": str(users),
            "DX_IDP_ACCESS_TOKEN_TTL": "14400",
        }
        environment.pop("DX_IDP_TEST_MODE", None)
        environment.pop("DX_IDP_TEST_PASSWORD", None)
        self._spawn("idp", [node, str(IDP_DIR / "server.js")], environment, cwd=IDP_DIR)

    def _service_environment(self, pool_max_size: int) -> dict[str, str]:
        # Nothing of the caller's DX_ settings may pull a service to another database, broker or port.
        environment = {name: value for name, value in os.environ.items() if not name.startswith("DX_")}
        environment.update(
            {
                "DX_DATABASE_URL": self.database_url,
                "DX_AMQP_URL": self.bus_url,
                "DX_WEBHOOK_SECRETS": WEBHOOK_SECRET,
                "DX_OIDC_ISSUER": self.issuer,
                "DX_OIDC_AUDIENCE": DEFAULT_AUDIENCE,
                "DX_LOG_LEVEL": "WARNING",
                "DX_POOL_MAX_SIZE": str(pool_max_size),
            }
        )
        environment.update(self.service_settings)
        for service in SERVICES:
            environment[f"DX_{service.upper()}_PORT"] = str(self.ports.http(service))
            environment[f"DX_{service.upper()}_URL"] = self.url(service)
            environment[f"DX_{service.upper()}_METRICS_PORT"] = str(self.ports.metrics(service))
        return environment

    def _spawn(self, name: str, command: list[str], environment: dict[str, str], cwd: Path | None = None) -> None:
        with (self.workdir / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                command, env=environment, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(SERVICES)
        with httpx.Client(timeout=2) as client:
            while pending and time.monotonic() < deadline:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited during start-up:\n{self.log_tail(name)}")
                for service in list(pending):
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.url(service)}/readyz").status_code == 200:
                            pending.discard(service)
                time.sleep(0.3)
        if pending:
            raise RuntimeError(f"not ready: {sorted(pending)}\n" + "\n".join(self.log_tail(s) for s in pending))

    def log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name}\n{text[-2000:]}"

    def pid(self, service: str) -> int:
        return self.processes[service].pid

    # -- stop -----------------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stops what was started and removes the database, the vhost and the files; returns what failed."""
        problems: list[str] = []
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                problems.append(f"{name} had to be killed")
        self.processes.clear()
        if self.database_created:
            try:
                _drop_database(self.admin_database_url, self.database)
                self.database_created = False
            except Exception as exc:
                problems.append(f"database {self.database} not dropped: {exc!r}")
        if self.vhost_created:
            try:
                _rabbitmqctl("delete_vhost", self.vhost)
                self.vhost_created = False
            except Exception as exc:
                problems.append(f"vhost {self.vhost} not deleted: {exc!r}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems


def _drop_database(admin_database_url: str, database: str) -> None:
    # Runs outside any event loop (after Ctrl-C the benchmark's loop is gone): a short one of its own.
    async def drop() -> None:
        admin = await asyncpg.connect(admin_database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


def _rabbitmqctl(*arguments: str) -> None:
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise RuntimeError("rabbitmqctl is not on PATH: the benchmark makes and removes a vhost with it")
    done = subprocess.run([command, "-q", *arguments], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(arguments)}: {done.stderr.strip() or done.stdout.strip()}")


async def database_exists(admin_database_url: str, database: str) -> bool:
    admin = await asyncpg.connect(admin_database_url)
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await admin.close()


def vhost_exists(vhost: str) -> bool:
    command = shutil.which("rabbitmqctl")
    if command is None:
        return False
    listed = subprocess.run([command, "-q", "list_vhosts"], capture_output=True, text=True, timeout=60)
    return vhost in listed.stdout.split()
