"""Where the tests' PostgreSQL and RabbitMQ come from, and how each test gets its own.

`DX_DATABASE_URL` / `DX_AMQP_URL` name the servers when given (CI gives them); otherwise the local
defaults are tried, and testcontainers is used only where a Docker engine exists. Each test gets a
fresh database on that server, and unique exchange and queue names on that vhost, so tests and
concurrent runs never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from contextlib import ExitStack
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{vhost}", parts.query, parts.fragment))


class Servers:
    """The PostgreSQL server URL (admin database) and the AMQP URL (a vhost of this run)."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.database_url = self._postgres()
        self.amqp_url = self._rabbitmq()

    def _postgres(self) -> str:
        given = os.environ.get("DX_DATABASE_URL")
        if given:
            return with_database(given, "postgres")
        if _answers(DEFAULT_DATABASE_URL, 5432):
            return DEFAULT_DATABASE_URL
        if _docker_available():
            from testcontainers.postgres import PostgresContainer

            container = self._stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
            return with_database(container.get_connection_url(), "postgres")
        raise RuntimeError("no PostgreSQL: set DX_DATABASE_URL, start one on 127.0.0.1:5432, or install Docker")

    def _rabbitmq(self) -> str:
        given = os.environ.get("DX_AMQP_URL")
        if given:
            return given
        if _answers(DEFAULT_AMQP_URL, 5672):
            return self._private_vhost(DEFAULT_AMQP_URL)
        if _docker_available():
            from testcontainers.rabbitmq import RabbitMqContainer

            container = self._stack.enter_context(RabbitMqContainer("rabbitmq:3.13-management"))
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            return f"amqp://guest:guest@{host}:{port}/"
        raise RuntimeError("no RabbitMQ: set DX_AMQP_URL, start one on 127.0.0.1:5672, or install Docker")

    def _private_vhost(self, url: str) -> str:
        """A vhost of this run's own where rabbitmqctl can make one; else unique names alone isolate."""
        if shutil.which("rabbitmqctl") is None or os.geteuid() != 0:
            return url
        vhost = f"dx-test-{uuid.uuid4().hex[:10]}"
        made = subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, timeout=60)
        if made.returncode != 0:
            return url
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        self._stack.callback(
            subprocess.run, ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60
        )
        return with_vhost(url, vhost)

    def close(self) -> None:
        self._stack.close()


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
