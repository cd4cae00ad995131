"""A real SMTP server for the tests: aiosmtpd as its own process, delivering into a Maildir the test reads.

`smtp_server(folder)` starts `python -m aiosmtpd` on a free port with `RefusingMailbox`: it stores every
message it accepts, and refuses (550) the recipients listed in the folder's `refused.txt`, so a test can
make the relay refuse a send and accept it again on the next run.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.handlers import Mailbox

from tests.support.system import ROOT, free_port


class RefusingMailbox(Mailbox):
    """Mailbox handler that refuses the addresses listed one per line in `refused_file`."""

    def __init__(self, mail_dir: os.PathLike[str] | str, refused_file: str) -> None:
        super().__init__(mail_dir)  # type: ignore[arg-type]
        self.refused_file = Path(refused_file)

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> RefusingMailbox:
        if len(args) != 2:
            parser.error("RefusingMailbox needs the maildir and the refused-addresses file")
        return cls(args[0], args[1])

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refused = self.refused_file.read_text().split() if self.refused_file.exists() else []
        if address in refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    folder: Path

    @property
    def refused_file(self) -> Path:
        return self.folder / "refused.txt"

    def refuse(self, *addresses: str) -> None:
        self.refused_file.write_text("\n".join(addresses))

    def accept_all(self) -> None:
        self.refused_file.write_text("")

    def messages(self) -> list[EmailMessage]:
        """Every message that arrived, parsed with the modern policy (headers and bodies decoded)."""
        box = mailbox.Maildir(self.folder / "maildir", create=False)
        found = []
        for key in box.iterkeys():
            parsed = message_from_bytes(box.get_bytes(key), policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


@contextlib.contextmanager
def smtp_server(folder: Path) -> Iterator[SmtpServer]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = SmtpServer(port, folder)
    server.accept_all()
    log = (folder / "aiosmtpd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "tests.support.smtp.RefusingMailbox", str(folder / "maildir"), str(server.refused_file)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"aiosmtpd did not start: {(folder / 'aiosmtpd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
