"""A real SMTP server for the tests: aiosmtpd as its own process, delivering into a Maildir the test reads.

`smtp_server(folder)` starts `python -m aiosmtpd` on a free port with `RefusingMailbox`: it stores every
message it accepts, and refuses (550) the recipients listed in the folder's `refused.txt`, so a test can
make the relay refuse a send and accept it again on the next run.

`smtp_server(folder, login=(user, password))` starts this module instead (`python -m tests.support.smtp`):
the same mailbox behind STARTTLS (a self-signed certificate for `localhost`, written to the folder as
`cert.pem`, which the client must trust) and AUTH, both required, as a prefecture's relay would have them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import mailbox
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
    def certificate(self) -> Path:
        """The self-signed certificate of a STARTTLS server (trust it with SSL_CERT_FILE)."""
        return self.folder / "cert.pem"

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
def smtp_server(folder: Path, login: tuple[str, str] | None = None) -> Iterator[SmtpServer]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = SmtpServer(port, folder)
    server.accept_all()
    log = (folder / "aiosmtpd.log").open("wb")
    if login is None:
        command = ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                   "-c", "tests.support.smtp.RefusingMailbox", str(folder / "maildir"), str(server.refused_file)]
    else:
        command = ["-m", "tests.support.smtp", "--port", str(port), "--folder", str(folder),
                   "--user", login[0], "--password", login[1]]
    process = subprocess.Popen(
        [sys.executable, *command],
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


# ---- the STARTTLS + AUTH server (run as `python -m tests.support.smtp`) ------------------------------


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _serve(port: int, folder: Path, user: str, password: str) -> None:
    cert_file, key_file = _self_signed_certificate(folder)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(), password.encode())
        return AuthResult(success=ok)

    handler = RefusingMailbox(folder / "maildir", str(folder / "refused.txt"))
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=authenticate, auth_required=True, auth_require_tls=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--port", type=int, required=True)
    arguments.add_argument("--folder", type=Path, required=True)
    arguments.add_argument("--user", required=True)
    arguments.add_argument("--password", required=True)
    parsed = arguments.parse_args()
    _serve(parsed.port, parsed.folder, parsed.user, parsed.password)

