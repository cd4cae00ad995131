"""Signed webhook deliveries over kept-alive connections, closed-loop (as fast as answered) or open-loop
(at an offered rate). HTTP/1.1 is written by hand on plain sockets: an HTTP client library costs about a
CPU core at these rates, taken from the services being measured on a small machine."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from training.webhook_signing import sign

WEBHOOK_PATH = "/webhooks/elearning"


def signed_completion(secret: str, session_id: str, staff_id: str, occurred_at: str) -> bytes:
    """The whole HTTP request of one signed completion delivery (signed now: ±5 minutes of tolerance)."""
    body = json.dumps(
        {"type": "completion", "session_id": session_id, "staff_id": staff_id, "occurred_at": occurred_at}
    ).encode()
    headers = {**sign(secret, body, f"msg_bench_{uuid.uuid4().hex}"), "content-type": "application/json"}
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Sends one request on a kept-alive connection and reads the whole answer; returns its status."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


@dataclass
class Deliveries:
    """What was sent and answered; `accepted[i]` is the monotonic time of the i-th 2xx (staff ids beside)."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    accepted_at: list[float] = field(default_factory=list)
    accepted_staff: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def record(self, status: int, staff_id: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.accepted_at.append(time.monotonic())
            self.accepted_staff.append(staff_id)

    @property
    def accepted(self) -> int:
        return len(self.accepted_at)


async def closed_loop(
    port: int, requests: Sequence[tuple[str, bytes]], *, clients: int, seconds: float, into: Deliveries
) -> None:
    """`clients` connections, each sending its next request as soon as the last was answered, until
    `seconds` have passed or the requests run out."""
    upcoming = iter(requests)
    into.started = time.monotonic()
    deadline = into.started + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for staff_id, request in upcoming:
                into.sent += 1
                into.record(await exchange(reader, writer, request), staff_id)
                if time.monotonic() >= deadline:
                    return
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    into.finished = time.monotonic()


async def open_loop(
    port: int, requests: Sequence[tuple[str, bytes]], *, rate: float, clients: int, into: Deliveries
) -> None:
    """Offers the requests at `rate` per second, each at its own scheduled moment, over up to `clients`
    connections (a late answer delays no later request while a connection is free)."""
    due: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
    into.started = time.monotonic()

    async def schedule() -> None:
        for number, item in enumerate(requests):
            delay = into.started + number / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(item)
        for _ in range(clients):
            due.put_nowait(None)

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (item := await due.get()) is not None:
                staff_id, request = item
                into.sent += 1
                into.record(await exchange(reader, writer, request), staff_id)
        finally:
            writer.close()

    await asyncio.gather(schedule(), *(client() for _ in range(clients)))
    into.finished = time.monotonic()
