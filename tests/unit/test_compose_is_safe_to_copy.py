"""docker-compose.yml can be copied to a server as it is (ISSUE 13 "Compose that is safe to copy").

Only the proxy (the portal and the webhook path) is published; no guest account and no management port
outside the `dev` profile, whose forwards bind to 127.0.0.1 only; credentials only from the uncommitted
.env (documented by .env.example); every image pinned; nothing runs as root.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROXY_CONF = ROOT / "deploy" / "compose" / "proxy.conf"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DX_SERVICES = ("nomination", "training", "progression", "reporting", "portal")
SECRET_VARIABLES = ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "DX_WEBHOOK_SECRETS")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services(compose: dict[str, Any], *, dev: bool = False) -> dict[str, dict[str, Any]]:
    """The services that start without a profile (and with `dev`, those of that profile too)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or (dev and "dev" in service["profiles"])
    }


def published(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [str(key), *strings_in(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return [str(value)]


def test_only_the_proxy_publishes_a_port_and_it_routes_only_the_portal_and_the_webhook(compose: dict[str, Any]) -> None:
    publishing = {name: published(service) for name, service in services(compose).items() if published(service)}
    assert publishing == {"proxy": ["${DX_HTTP_PORT:-8100}:8080"]}
    conf = PROXY_CONF.read_text(encoding="utf-8")
    blocks = re.split(r"^\s*location\s+", conf, flags=re.M)[1:]
    locations = {
        block.split("{", 1)[0].strip(): re.findall(r"proxy_pass\s+([^;]+);", block) for block in blocks
    }
    assert locations == {"= /webhooks/elearning": ["http://training:8102"], "/": ["http://portal:8100"]}


def test_the_dev_profile_forwards_only_to_this_machine(compose: dict[str, Any]) -> None:
    dev_only = {name: s for name, s in compose["services"].items() if "dev" in s.get("profiles", [])}
    assert dev_only, "a dev profile exists"
    for name, service in dev_only.items():
        for port in published(service):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published beyond localhost"


def test_no_guest_account_and_no_management_port_outside_the_dev_profile(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        text = " ".join(strings_in(service))
        assert "guest" not in text, f"{name} uses the guest account"
        assert "15672" not in text, f"{name} exposes the management port"
        assert "management" not in str(service.get("image", "")), f"{name}: the management plugin is enabled"
    rabbit = compose["services"]["rabbitmq"]["environment"]
    assert rabbit["RABBITMQ_DEFAULT_USER"] and rabbit["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")


def test_credentials_come_from_the_env_file_only(compose: dict[str, Any]) -> None:
    text = "\n".join(strings_in(compose))
    for variable in SECRET_VARIABLES:
        assert f"${{{variable}:?" in text, f"{variable} is required from .env"
    substituted = re.sub(r"\$\{[^}]*\}", "FROM_ENV", text)
    urls = re.findall(r"\w+://[^\s\"']+", substituted)
    assert any("@" in url for url in urls), "the connection URLs are checked"
    for url in urls:
        credentials = re.match(r"\w+://([^@/]*)@", url)
        if credentials:
            _, _, password = credentials.group(1).partition(":")
            assert password == "FROM_ENV", f"a literal password in {url}"
    assert "whsec_" not in text
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for variable in SECRET_VARIABLES:
        assert re.search(rf"^{variable}=$", example, flags=re.M), f".env.example documents {variable}, empty"


def test_the_env_file_is_never_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env is ignored by git"
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert example.returncode == 1, ".env.example is committed"


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
            continue
        reference, _, digest = image.partition("@")
        tag = reference.rsplit(":", 1)
        assert len(tag) == 2 and re.match(r"\d+\.\d+", tag[1]), f"{name}: {image} is not pinned to a version"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: {image} is not pinned to a digest"
    stages: set[str] = set()
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("FROM "):
            image, *alias = line.split()[1:]
            assert image in stages or re.search(r":\d+\.\d+\.\d+[^@]*@sha256:[0-9a-f]{64}$", image), line
            stages.update(alias[-1:])
    assert re.search(r"uv==\d+\.\d+\.\d+", DOCKERFILE.read_text(encoding="utf-8"))


def test_nothing_runs_as_root(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        user = str(service.get("user", ""))
        assert user and user.split(":")[0] not in {"0", "root"}, f"{name} runs as root"
        assert service.get("cap_drop") == ["ALL"], f"{name} keeps its capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
    for name in DX_SERVICES:
        assert compose["services"][name]["read_only"] is True, f"{name}: read-only root filesystem"
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    users = [re.findall(r"^USER (\S+)", stage, flags=re.M) for stage in stages]
    assert users[0] and users[0][-1].split(":")[0] not in {"0", "root"}, "the base stage ends unprivileged"
    assert all(not found or found[-1].split(":")[0] not in {"0", "root"} for found in users)


def test_each_service_talks_to_the_broker_with_its_own_account(compose: dict[str, Any]) -> None:
    """CONTRACT.md: producers are authenticated; no service uses the operators' broker account."""
    for name in ("nomination", "training", "progression", "reporting"):
        environment = compose["services"][name]["environment"]
        assert environment[f"DX_{name.upper()}_AMQP_URL"].startswith(f"amqp://dx-{name}:"), name
        assert "DX_AMQP_URL" not in environment, name
    broker = compose["services"]["rabbitmq"]
    script = (ROOT / "deploy" / "compose" / "rabbitmq-with-service-users.sh").read_text(encoding="utf-8")
    assert "rabbitmq-with-service-users.sh" in " ".join(broker["entrypoint"])
    assert "set_topic_permissions" in script
    for name in ("nomination", "training", "progression", "reporting"):
        assert f"DX_{name.upper()}_AMQP_PASSWORD" in broker["environment"]
