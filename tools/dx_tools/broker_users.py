"""One RabbitMQ user per service, allowed only what that service does on the bus.

    python -m dx_tools.broker_users ensure --vhost V [--user-prefix dx-] [--env-file .run/broker-users.env]
    python -m dx_tools.broker_users remove [--user-prefix dx-]

`ensure` creates (or corrects) the users `<prefix><service>` and their permissions in the vhost, and
writes each service's broker URL (`DX_<SERVICE>_AMQP_URL=amqp://<user>:<password>@host:port/<vhost>`)
to the env file, mode 0600. A password comes from `DX_<SERVICE>_AMQP_PASSWORD` when given, else from
the env file of an earlier run, else it is generated. It prints user names and what it did, never a
password. It talks to the broker with `rabbitmqctl` (run as root or the rabbitmq user on the broker's
machine), or with the management HTTP API when `--management-url` is given (as in docker-compose.yml;
the admin account from `DX_BROKER_ADMIN_USER` / `DX_BROKER_ADMIN_PASSWORD`).

What each service may do (RabbitMQ permissions are regular expressions on resource names):
- configure: its own queues `<queue_prefix><service>.*` (and their `.dlq`), and the two exchanges it
  declares idempotently at start-up (`dx.events`, `dx.dead-letter`);
- write: its own queues (bindings), `dx.events` (publish) and `dx.dead-letter` (a consumer copies a
  message it cannot process to its DLQ; queues name it as their dead-letter exchange);
- read: its own queues (consume) and both exchanges (bind);
- topic permission on `dx.events`: publish only routing keys `^<service>\\.` — so the routing key of
  every event on the bus names its authenticated producer, which consumers check against `source`.
The broker's own dead-lettering (delivery limit, at-least-once) is not subject to user permissions.
Putting a dead letter back on `dx.events` under its original key needs an operator account, not a
service's.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from dx_shared.settings import SERVICES, Settings, get_settings

DEFAULT_USER_PREFIX = "dx-"
DEFAULT_ENV_FILE = Path(".run/broker-users.env")


@dataclass(frozen=True)
class BrokerUser:
    service: str
    username: str
    configure: str
    write: str
    read: str
    topic_exchange: str
    topic_write: str
    topic_read: str = ".*"


def _exactly(name: str) -> str:
    return f"^{re.escape(name)}$"


def plan(
    settings: Settings, user_prefix: str = DEFAULT_USER_PREFIX, services: Sequence[str] = SERVICES
) -> list[BrokerUser]:
    """The user and the permissions of each service (pure)."""
    users = []
    exchanges = f"{_exactly(settings.exchange)}|{_exactly(settings.dead_letter_exchange)}"
    for service in services:
        own_queues = f"^{re.escape(settings.queue_prefix + service)}\\."
        allowed = f"{own_queues}|{exchanges}"
        users.append(
            BrokerUser(
                service=service,
                username=f"{user_prefix}{service}",
                configure=allowed,
                write=allowed,
                read=allowed,
                topic_exchange=settings.exchange,
                topic_write=f"^{re.escape(service)}\\.",
            )
        )
    return users


def service_url(base_url: str, username: str, password: str, vhost: str) -> str:
    """`base_url`'s scheme, host and port with this account and vhost (pure)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme or "amqp", netloc, "/" + quote(vhost, safe=""), parts.query, ""))


def env_name(service: str) -> str:
    return f"DX_{service.upper()}_AMQP_URL"


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def known_passwords(env_file_values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Passwords given by `DX_<SERVICE>_AMQP_PASSWORD`, else those of the earlier env file (pure)."""
    found = {}
    for service in SERVICES:
        given = environ.get(f"DX_{service.upper()}_AMQP_PASSWORD")
        if given:
            found[service] = given
            continue
        earlier = env_file_values.get(env_name(service))
        if earlier:
            password = urlsplit(earlier).password
            if password:
                found[service] = unquote(password)
    return found


def write_env_file(path: Path, urls: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Each service's own RabbitMQ account (dx_tools.broker_users). Secret: keep this file 0600.\n"
    text += "".join(f"{env_name(service)}={url}\n" for service, url in urls.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


class Broker(Protocol):
    def ensure_vhost(self, vhost: str) -> None: ...

    def authenticates(self, username: str, password: str) -> bool: ...

    def set_password(self, username: str, password: str, *, create: bool) -> None: ...

    def set_permissions(self, vhost: str, user: BrokerUser) -> None: ...

    def delete_user(self, username: str) -> None: ...

    def list_users(self) -> list[str]: ...


class RabbitmqCtl:
    """The broker on this machine, through `rabbitmqctl` (RabbitMQ 3.10 takes passwords as arguments)."""

    def __init__(self, node: str | None = None) -> None:
        self._base = ["rabbitmqctl", "-q"] + (["-n", node] if node else [])

    @staticmethod
    def runnable() -> bool:
        if shutil.which("rabbitmqctl") is None:
            return False
        try:
            done = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self._base, *args], capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            # The arguments may hold a password: report the command's name and its error only.
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:300]}")
        return done

    def ensure_vhost(self, vhost: str) -> None:
        if vhost not in self._run("list_vhosts", "--no-table-headers").stdout.split("\n"):
            self._run("add_vhost", vhost)

    def list_users(self) -> list[str]:
        lines = self._run("list_users", "--no-table-headers").stdout.splitlines()
        return [line.split("\t", 1)[0] for line in lines if line.strip()]

    def authenticates(self, username: str, password: str) -> bool:
        return self._run("authenticate_user", username, password, check=False).returncode == 0

    def set_password(self, username: str, password: str, *, create: bool) -> None:
        self._run("add_user" if create else "change_password", username, password)

    def set_permissions(self, vhost: str, user: BrokerUser) -> None:
        self._run("set_permissions", "-p", vhost, user.username, user.configure, user.write, user.read)
        self._run(
            "set_topic_permissions", "-p", vhost, user.username, user.topic_exchange, user.topic_write, user.topic_read
        )

    def delete_user(self, username: str) -> None:
        self._run("delete_user", username, check=False)


class ManagementApi:
    """The broker through its management HTTP API (the `rabbitmq:*-management` image)."""

    def __init__(self, url: str, admin_user: str, admin_password: str) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/") + "/api", auth=(admin_user, admin_password), timeout=30)

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise RuntimeError(
                f"management API {response.request.method} {response.request.url.path}: {response.status_code}"
            )
        return response

    def ensure_vhost(self, vhost: str) -> None:
        self._check(self._client.put(f"/vhosts/{quote(vhost, safe='')}"))

    def list_users(self) -> list[str]:
        return [user["name"] for user in self._check(self._client.get("/users")).json()]

    def authenticates(self, username: str, password: str) -> bool:
        # Setting the password again is idempotent over HTTP; there is no cheap check to make first.
        return False

    def set_password(self, username: str, password: str, *, create: bool) -> None:
        self._check(self._client.put(f"/users/{quote(username, safe='')}", json={"password": password, "tags": ""}))

    def set_permissions(self, vhost: str, user: BrokerUser) -> None:
        path = f"{quote(vhost, safe='')}/{quote(user.username, safe='')}"
        self._check(
            self._client.put(
                f"/permissions/{path}", json={"configure": user.configure, "write": user.write, "read": user.read}
            )
        )
        self._check(
            self._client.put(
                f"/topic-permissions/{path}",
                json={"exchange": user.topic_exchange, "write": user.topic_write, "read": user.topic_read},
            )
        )

    def delete_user(self, username: str) -> None:
        self._client.delete(f"/users/{quote(username, safe='')}")


def ensure(
    broker: Broker,
    settings: Settings,
    *,
    vhost: str,
    user_prefix: str = DEFAULT_USER_PREFIX,
    passwords: Mapping[str, str] | None = None,
    base_url: str | None = None,
    report: bool = True,
    services: Sequence[str] = SERVICES,
) -> dict[str, str]:
    """Creates or corrects every service's user and permissions; returns each service's broker URL."""
    broker.ensure_vhost(vhost)
    given = dict(passwords or {})
    urls = {}
    existing = set(broker.list_users())
    for user in plan(settings, user_prefix, services):
        password = given.get(user.service)
        exists = user.username in existing
        if password is None:
            password = secrets.token_hex(32)  # never starts with "-", which rabbitmqctl would read as an option
            broker.set_password(user.username, password, create=not exists)
            action = "created" if not exists else "given a new password"
        elif not exists:
            broker.set_password(user.username, password, create=True)
            action = "created"
        elif not broker.authenticates(user.username, password):
            broker.set_password(user.username, password, create=False)
            action = "password set"
        else:
            action = "kept"
        broker.set_permissions(vhost, user)
        if report:
            print(
                f"  broker user {user.username:<24} {action}; may publish {user.topic_write} on {user.topic_exchange}"
            )
        urls[user.service] = service_url(base_url or settings.amqp_url, user.username, password, vhost)
    return urls


def remove(broker: Broker, user_prefix: str) -> list[str]:
    removed = []
    existing = set(broker.list_users())
    for service in SERVICES:
        username = f"{user_prefix}{service}"
        if username in existing:
            broker.delete_user(username)
            removed.append(username)
    return removed


def _vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dx_tools.broker_users", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("ensure", "remove"):
        command = sub.add_parser(name)
        command.add_argument("--user-prefix", default=os.environ.get("DX_BROKER_USER_PREFIX", DEFAULT_USER_PREFIX))
        command.add_argument("--management-url", default=os.environ.get("DX_BROKER_MANAGEMENT_URL"))
        command.add_argument("--node", default=None, help="rabbitmqctl -n <node>")
    ensure_parser = sub.choices["ensure"]
    ensure_parser.add_argument("--vhost", help="default: the vhost of DX_AMQP_URL")
    ensure_parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    args = parser.parse_args(argv)
    settings = get_settings()
    broker: Broker
    if args.management_url:
        broker = ManagementApi(
            args.management_url,
            os.environ.get("DX_BROKER_ADMIN_USER", "guest"),
            os.environ.get("DX_BROKER_ADMIN_PASSWORD", "guest"),
        )
    elif RabbitmqCtl.runnable():
        broker = RabbitmqCtl(args.node)
    else:
        print(
            "rabbitmqctl is not runnable here (run as root or the rabbitmq user) and no --management-url given",
            file=sys.stderr,
        )
        return 3
    if args.command == "remove":
        for username in remove(broker, args.user_prefix):
            print(f"  broker user {username} removed")
        return 0
    vhost = args.vhost or _vhost_of(settings.amqp_url)
    passwords = known_passwords(read_env_file(args.env_file), os.environ)
    urls = ensure(broker, settings, vhost=vhost, user_prefix=args.user_prefix, passwords=passwords)
    write_env_file(args.env_file, urls)
    print(f"  broker URLs written to {args.env_file} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
