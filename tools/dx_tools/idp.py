"""The local OpenID Connect provider (deploy/idp, node `oidc-provider`): demo users, start/stop, tokens.

`python -m dx_tools.idp users [--out PATH]`   write the demo users file (passwords hashed with scrypt)
`python -m dx_tools.idp start`                install the node packages if needed, start the provider
                                              in the background (pid in .run/pids/idp.pid, log in .run/logs)
`python -m dx_tools.idp wait`                 wait until its discovery document answers
`python -m dx_tools.idp stop`                 stop the provider `start` started
`python -m dx_tools.idp token CLIENT_ID SCOPE…`  print a client-credentials access token (secret from
                                              DX_IDP_CLIENT_SECRET_<ID> or deploy/idp/clients.json)

The environment variables of deploy/idp/server.js (DX_IDP_ISSUER, DX_IDP_PORT, DX_IDP_DATA_DIR,
DX_IDP_USERS_FILE, …) apply here too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from dx_shared.client_credentials import client_token as shared_client_token
from dx_shared.settings import Settings
from dx_tools.demo_data import Staff, generate

ROOT = Path(__file__).resolve().parents[2]
IDP_DIR = ROOT / "deploy" / "idp"
RUN_DIR = ROOT / ".run"
DEFAULT_ISSUER = "http://127.0.0.1:8090"
DEFAULT_AUDIENCE = "dx-talent"
DEMO_PASSWORD = "dx-demo-2024"
ALL_SCOPES = (
    "dx.roster.import",
    "dx.nominations.write",
    "dx.nominations.read",
    "dx.training.write",
    "dx.training.read",
    "dx.fy.close",
    "dx.progress.read",
    "dx.reports.read",
    "dx.audit.read",
    "dx.contacts.read",
    "dx.ops",
)
# scrypt cost, as deploy/idp/server.js reads it back from the stored hash
SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1


@dataclass(frozen=True)
class DemoUser:
    username: str
    sub: str
    dx_role: str
    dx_department: str | None
    dx_staff_id: str | None
    name: str


def hash_password(password: str) -> str:
    """scrypt (hashlib), stored as scrypt$N$r$p$<salt>$<hash> in base64url, as server.js verifies it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def demo_users(seed: int = 2024) -> list[DemoUser]:
    """One member of each office, two department heads and two trainees, all from the demo data set.

    The trainees are people recommended in the latest demo year; the department heads are managers of
    those trainees' departments, so each head sees a trainee of their own.
    """
    plan = generate(seed)[-1]
    roster: dict[str, Staff] = {person.staff_id: person for person in plan.staff}
    managers: dict[str, Staff] = {}
    for person in plan.staff:
        if person.is_manager:
            managers.setdefault(person.department_code, person)
    trainees: list[Staff] = []
    for nomination in plan.nominations:
        nominee = roster.get(nomination.staff_id)
        if (
            nomination.slot == "recommended"
            and nominee is not None
            and nominee.department_code in managers
            and managers[nominee.department_code].staff_id != nominee.staff_id
            and all(other.department_code != nominee.department_code for other in trainees)
        ):
            trainees.append(nominee)
        if len(trainees) == 2:
            break
    if len(trainees) < 2:
        raise RuntimeError("the demo data set has no two recommended trainees with a manager in their department")
    users = [
        DemoUser("dx.office", "demo-dx-office", "dx_office", None, None, "DX推進 担当"),
        DemoUser("hr.office", "demo-hr-office", "hr_office", None, None, "人財育成 担当"),
        DemoUser("info.policy", "demo-info-policy", "info_policy", None, None, "情報政策 担当"),
    ]
    for number, trainee in enumerate(trainees, start=1):
        head = managers[trainee.department_code]
        users.append(
            DemoUser(
                f"dept.head{number}",
                f"demo-dept-head{number}",
                "department",
                head.department_code,
                head.staff_id,
                head.name,
            )
        )
    for number, trainee in enumerate(trainees, start=1):
        users.append(
            DemoUser(
                f"trainee{number}",
                f"demo-trainee{number}",
                "trainee",
                trainee.department_code,
                trainee.staff_id,
                trainee.name,
            )
        )
    return users


def write_users(path: Path, password: str = DEMO_PASSWORD, seed: int = 2024) -> list[DemoUser]:
    users = demo_users(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{**asdict(user), "password_hash": hash_password(password)} for user in users]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)
    return users


def ensure_node_modules(idp_dir: Path = IDP_DIR) -> None:
    """`npm ci` when node_modules is missing or older than package-lock.json."""
    installed = idp_dir / "node_modules" / ".package-lock.json"
    lock = idp_dir / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (apt-get install nodejs npm); the identity provider needs it")
    subprocess.run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], cwd=idp_dir, check=True)


def issuer_from_env() -> str:
    """The local provider's issuer, as server.js derives it from the same environment."""
    port = os.environ.get("DX_IDP_PORT")
    return os.environ.get("DX_IDP_ISSUER") or (f"http://127.0.0.1:{port}" if port else DEFAULT_ISSUER)


def start(env: Mapping[str, str] | None = None, run_dir: Path = RUN_DIR) -> int:
    """Starts `node server.js` in the background; returns its pid (also written to run_dir/pids/idp.pid)."""
    ensure_node_modules()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed (apt-get install nodejs); the identity provider needs it")
    stop(run_dir)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    environment["DX_IDP_DATA_DIR"] = str(Path(environment.get("DX_IDP_DATA_DIR") or run_dir / "idp").resolve())
    if environment.get("DX_IDP_USERS_FILE"):
        environment["DX_IDP_USERS_FILE"] = str(Path(environment["DX_IDP_USERS_FILE"]).resolve())
    # Test-mode logins (any role for a known password) never run outside the tests' private provider.
    environment.pop("DX_IDP_TEST_MODE", None)
    environment.pop("DX_IDP_TEST_PASSWORD", None)
    with (run_dir / "logs" / "idp.log").open("ab") as log:
        process = subprocess.Popen(
            [node, str(IDP_DIR / "server.js")], cwd=IDP_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    (run_dir / "pids" / "idp.pid").write_text(str(process.pid))
    return process.pid


def stop(run_dir: Path = RUN_DIR) -> None:
    pidfile = run_dir / "pids" / "idp.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, ValueError):
        pass
    pidfile.unlink(missing_ok=True)


def wait(issuer: str, timeout: float = 30.0) -> dict[str, Any]:
    """Waits until the issuer's discovery document answers; returns it."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return discover(issuer, cached=False)
        except (httpx.HTTPError, ValueError) as error:
            last = error
            time.sleep(0.2)
    raise TimeoutError(f"the identity provider at {issuer} did not answer within {timeout:.0f}s: {last}")


class HasIssuer(Protocol):
    @property
    def oidc_issuer(self) -> str: ...


_discovered: dict[str, dict[str, Any]] = {}


def discover(issuer: str, *, cached: bool = True) -> dict[str, Any]:
    if cached and issuer in _discovered:
        return _discovered[issuer]
    response = httpx.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=5)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    if document.get("issuer") != issuer.rstrip("/"):
        raise ValueError(f"discovery names issuer {document.get('issuer')!r}, expected {issuer!r}")
    _discovered[issuer] = document
    return document


def client_token(issuer_or_settings: str | HasIssuer, client_id: str, secret: str, scopes: Sequence[str]) -> str:
    """An access token by the client-credentials grant (the one implementation, in dx_shared)."""
    issuer = issuer_or_settings if isinstance(issuer_or_settings, str) else issuer_or_settings.oidc_issuer
    settings = Settings(oidc_issuer=issuer)  # DX_OIDC_TOKEN_URL, when set, names the token endpoint
    return shared_client_token(settings, scopes, client_id=client_id, secret=secret)


def client_secret(client_id: str) -> str:
    """The client's secret: DX_IDP_CLIENT_SECRET_<ID> if set, else the development one in clients.json."""
    variable = "DX_IDP_CLIENT_SECRET_" + client_id.upper().replace("-", "_")
    if os.environ.get(variable):
        return os.environ[variable]
    clients = json.loads((IDP_DIR / "clients.json").read_text(encoding="utf-8"))["clients"]
    for client in clients:
        if client["client_id"] == client_id and "client_secret" in client:
            return str(client["client_secret"])
    raise KeyError(f"no secret for client {client_id}")


def sign_in_help(users: Sequence[DemoUser], password: str = DEMO_PASSWORD) -> str:
    lines = [f"demo sign-in (password {password}):"]
    for user in users:
        where = " ".join(
            part
            for part in (
                user.dx_department and f"department {user.dx_department}",
                user.dx_staff_id and f"staff {user.dx_staff_id}",
            )
            if part
        )
        lines.append(f"  {user.username:<12} {user.dx_role:<12} {where}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dx_tools.idp", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users", help="write the demo users file")
    users.add_argument("--out", type=Path, default=None)
    users.add_argument("--seed", type=int, default=2024)
    commands.add_parser("start", help="start the provider in the background")
    commands.add_parser("stop", help="stop it")
    commands.add_parser("wait", help="wait until it answers")
    token = commands.add_parser("token", help="print a client-credentials access token")
    token.add_argument("client_id")
    token.add_argument("scopes", nargs="*", default=list(ALL_SCOPES))
    args = parser.parse_args(argv)

    if args.command == "users":
        default = Path(os.environ.get("DX_IDP_DATA_DIR") or RUN_DIR / "idp") / "users.json"
        out = args.out or Path(os.environ.get("DX_IDP_USERS_FILE") or default)
        password = os.environ.get("DX_DEMO_PASSWORD") or DEMO_PASSWORD
        written = write_users(out, password, args.seed)
        print(sign_in_help(written, password))
    elif args.command == "start":
        print(f"identity provider started (pid {start()}), log in {RUN_DIR / 'logs' / 'idp.log'}")
    elif args.command == "stop":
        stop()
    elif args.command == "wait":
        wait(issuer_from_env())
    elif args.command == "token":
        print(
            client_token(
                os.environ.get("DX_OIDC_ISSUER") or issuer_from_env(),
                args.client_id,
                client_secret(args.client_id),
                args.scopes,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
