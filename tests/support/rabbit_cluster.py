"""A private 3-node RabbitMQ cluster on this machine, for tests that kill a node (STACK-NOTES.md).

Each node runs the server scripts from the installed RabbitMQ directly (the `/usr/sbin` wrapper switches
to the `rabbitmq` user), with a name of its own (`dxc<n>-<tag>@localhost`), its own AMQP and
distribution ports from the free-port helper, its own data and log folders and a config file listening
on 127.0.0.1 only. The nodes and `rabbitmqctl` share one `HOME` whose `.erlang.cookie` is private to
this cluster. The shared node `rabbit@<hostname>` is never touched. `stop` stops every node and
removes every folder. `private_rabbit()` is a cluster of one node, which `stop_node` / `start_node` can
shut down and boot again on the same ports and data (its durable queues and messages survive).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.system import free_port


def server_scripts() -> Path | None:
    """The installed RabbitMQ's `sbin` folder, or None when the server is not installed."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"))
    if not found or not (Path(found[-1]) / "rabbitmq-server").exists():
        return None
    return Path(found[-1])


@dataclass
class Node:
    name: str
    amqp_port: int
    dist_port: int
    base: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.base / "node.pid"

    def pid(self) -> int | None:
        """The node's Erlang VM, only while that process is still this node (a pid can be reused)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if f"RABBITMQ_NODENAME={self.name}".encode() in environment else None


class RabbitCluster:
    """Three (or `size`) nodes joined into one cluster; `urls` lists their AMQP addresses."""

    def __init__(self, size: int = 3, keep_logs: Path | None = None) -> None:
        self._keep_logs = keep_logs
        sbin = server_scripts()
        if sbin is None:
            raise RuntimeError("the RabbitMQ server scripts are not installed")
        self._sbin = sbin
        self._tag = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix=f"dx-rabbit-cluster-{self._tag}-"))
        self._home = self.root / "home"
        self._home.mkdir()
        cookie = self._home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper() + uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        self.nodes = [self._node(index) for index in range(1, size + 1)]
        self.killed: list[Node] = []
        self.stopped: list[Node] = []

    def _node(self, index: int) -> Node:
        name = f"dxc{index}-{self._tag}@localhost"
        base = self.root / f"node{index}"
        (base / "mnesia").mkdir(parents=True)
        (base / "log").mkdir()
        amqp_port, dist_port = free_port(), free_port()
        config = base / "rabbitmq.conf"
        config.write_text(
            f"listeners.tcp.local = 127.0.0.1:{amqp_port}\n"
            "loopback_users.guest = true\n"
            "vm_memory_high_watermark.absolute = 400MiB\n"
            "disk_free_limit.absolute = 50MB\n"
        )
        plugins = base / "enabled_plugins"
        plugins.write_text("[].\n")
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(self._home),
                "RABBITMQ_NODENAME": name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(amqp_port),
                "RABBITMQ_DIST_PORT": str(dist_port),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_CONFIG_FILE": str(config),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
                "RABBITMQ_PID_FILE": str(base / "node.pid"),
            }
        )
        for variable in ("RABBITMQ_CONF_ENV_FILE", "RABBITMQ_ADVANCED_CONFIG_FILE", "ERL_EPMD_PORT"):
            env.pop(variable, None)
        return Node(name=name, amqp_port=amqp_port, dist_port=dist_port, base=base, env=env)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def running(self) -> list[Node]:
        return [node for node in self.nodes if node not in self.killed and node not in self.stopped]

    def node_named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def ctl(self, node: Node, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """Runs `rabbitmqctl -n <node> …` with the cluster's cookie; returns its standard output."""
        done = subprocess.run(
            [str(self._sbin / "rabbitmqctl"), "-n", node.name, *args],
            env=node.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def _boot(self, node: Node) -> None:
        subprocess.run(
            [str(self._sbin / "rabbitmq-server"), "-detached"],
            env=node.env,
            capture_output=True,
            timeout=60,
            check=True,
        )

    def start(self) -> None:
        """Starts every node, waits for each, then joins the others to the first."""
        for node in self.nodes:
            self._boot(node)
        for node in self.nodes:
            # `wait` waits for the pid file, the distribution and the applications of a node just started;
            # `await_startup` alone refuses a node that is not registered yet.
            self.await_node(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        for node in self.nodes:
            self.ctl(node, "await_startup", "--timeout", "120", timeout=150)

    def cluster_size(self, node: Node | None = None) -> int:
        status = json.loads(self.ctl(node or self.running[0], "cluster_status", "--formatter", "json"))
        return len(status.get("running_nodes", []))

    def queue_leaders(self, vhost: str = "/") -> dict[str, str]:
        """Quorum queue name → the node that leads it, as a running node reports them."""
        rows = json.loads(
            self.ctl(self.running[0], "list_queues", "-p", vhost, "name", "type", "leader", "--formatter", "json")
        )
        return {row["name"]: row["leader"] for row in rows if row.get("type") == "quorum"}

    def queue_messages(self, vhost: str = "/") -> dict[str, int]:
        rows = json.loads(self.ctl(self.running[0], "list_queues", "-p", vhost, "name", "messages", "--formatter", "json"))
        return {row["name"]: int(row["messages"]) for row in rows}

    def diagnostics(self) -> str:
        """The queues' state and the nodes' alarms, for a failure message."""
        parts = []
        with contextlib.suppress(Exception):
            parts.append(
                self.ctl(
                    self.running[0], "list_queues", "name", "type", "leader", "members", "online", "state",
                    "messages", "--formatter", "json", check=False,
                )
            )
        for node in self.running:
            with contextlib.suppress(Exception):
                parts.append(self.ctl(node, "eval", "rabbit_alarm:get_alarms().", check=False))
        return "\n".join(parts)

    def connections_by_node(self) -> dict[str, int]:
        """How many client connections each running node holds (told apart by the AMQP port they reached)."""
        rows = json.loads(self.ctl(self.running[0], "list_connections", "port", "--formatter", "json"))
        by_port = {node.amqp_port: node.name for node in self.nodes}
        counts: dict[str, int] = {}
        for row in rows:
            name = by_port.get(int(row["port"]), str(row["port"]))
            counts[name] = counts.get(name, 0) + 1
        return counts

    def kill(self, node: Node) -> None:
        """SIGKILLs the node's Erlang VM (a crash, not a shutdown) and waits until it has stopped running."""
        pid = node.pid()
        if pid is None:
            raise RuntimeError(f"{node.name} is not running")
        os.kill(pid, signal.SIGKILL)
        self.killed.append(node)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return
            if state in ("Z", "X"):  # dead; its parent has not reaped it yet
                return
            time.sleep(0.05)

    def stop_node(self, node: Node) -> None:
        """Shuts the node down (its Erlang VM exits, so every client connection drops); keeps its data."""
        self.ctl(node, "stop", str(node.pid_file), timeout=90)
        self.stopped.append(node)

    def start_node(self, node: Node) -> None:
        """Boots a node `stop_node` shut down, on the same ports and data; returns without waiting for it."""
        node.pid_file.unlink(missing_ok=True)
        self._boot(node)
        self.stopped.remove(node)

    def await_node(self, node: Node) -> None:
        """Waits until a node just started runs its applications."""
        self.ctl(node, "wait", str(node.pid_file), "--timeout", "120", timeout=150)

    def stop(self) -> None:
        """Stops every node (a kill when `stop` does not answer) and removes the cluster's folders."""
        for node in self.nodes:
            if node in self.killed or node in self.stopped:
                continue
            with contextlib.suppress(Exception):
                self.ctl(node, "stop", timeout=60, check=False)
        for node in self.nodes:
            pid = node.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._keep_logs is not None:
            shutil.rmtree(self._keep_logs, ignore_errors=True)
            for node in self.nodes:
                shutil.copytree(node.base / "log", self._keep_logs / node.name, dirs_exist_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def rabbit_cluster(size: int = 3, keep_logs: Path | None = None) -> Iterator[RabbitCluster]:
    """A started cluster, stopped and removed afterwards (its nodes' logs copied to `keep_logs` if given)."""
    cluster = RabbitCluster(size, keep_logs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def private_rabbit(keep_logs: Path | None = None) -> Iterator[tuple[RabbitCluster, Node]]:
    """One private node (a cluster of one), stopped and removed afterwards; the test may restart it."""
    with rabbit_cluster(1, keep_logs) as cluster:
        yield cluster, cluster.nodes[0]
