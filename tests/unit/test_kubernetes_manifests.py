"""The Kubernetes manifests (deploy/k8s), validated offline.

Every object is checked against the Kubernetes OpenAPI schemas that `kubernetes-validate` ships (strict:
an unknown field fails), and the operators' objects (RabbitmqCluster, CloudNativePG Cluster and Database)
against the openAPIV3Schema of the operators' published CRDs, vendored in deploy/k8s/crd-schemas. Then the
properties the deployment depends on are asserted, so that a change that drops one fails here.

The base is read file by file from its kustomization.yaml (no tool needed); when `kustomize` or
`kubectl` is installed, the base and the production overlay are also rendered by it and checked the same way.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CRD_SCHEMAS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmq.com_v1beta1_rabbitmqcluster.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_v1_cluster.json",
    ("postgresql.cnpg.io/v1", "Database"): "postgresql.cnpg.io_v1_database.json",
}
WORKLOADS = {"nomination": 8101, "training": 8102, "progression": 8103, "reporting": 8104, "portal": 8100}
SERVICES = ("nomination", "training", "progression", "reporting")
Manifest = dict[str, Any]


# ---- loading ------------------------------------------------------------------------------------


def load_base_files() -> list[Manifest]:
    """Every document of every file the base kustomization lists, as written."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: list[Manifest] = []
    for resource in kustomization["resources"]:
        with (BASE / resource).open(encoding="utf-8") as handle:
            objects += [document for document in yaml.safe_load_all(handle) if document]
    return objects


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(directory: Path) -> list[Manifest]:
    command = _kustomize()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed: the overlay is not rendered")
    return copy.deepcopy(_rendered(tuple(command), directory))


@cache
def _rendered(command: tuple[str, ...], directory: Path) -> list[Manifest]:
    result = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def rendered_production(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    """The production overlay rendered with the committed examples standing in for the secret files."""
    copy_root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy_root)
    for example in (copy_root / "overlays" / "production" / "secrets").glob("*.example"):
        example.with_suffix("").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    return render(copy_root / "overlays" / "production")


# ---- schema validation --------------------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """A CRD schema as strict as the API server's pruning: fields it does not declare are errors."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if (
            "properties" in closed
            and "additionalProperties" not in closed
            and not closed.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((K8S / "crd-schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text(encoding="utf-8"))
    schema.pop("$comment", None)
    schema = _closed(schema)
    schema["properties"]["metadata"] = {"type": "object"}  # checked by the API server, not the CRD
    return jsonschema.Draft7Validator(schema)


def schema_errors(manifest: Manifest) -> list[str]:
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    if key in CRD_SCHEMAS:
        return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in crd_validator(*key).iter_errors(manifest)]
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(copy.deepcopy(manifest), version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            errors.append(f"Kubernetes {version}: {str(error).splitlines()[0]}")
    return errors


def name_of(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def _assert_valid(objects: list[Manifest]) -> None:
    problems = {name_of(item): errors for item in objects if (errors := schema_errors(item))}
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_every_base_object_is_valid_against_its_schema() -> None:
    _assert_valid(load_base_files())


def test_the_rendered_base_is_valid_against_its_schema() -> None:
    _assert_valid(render(BASE))


def test_the_rendered_production_overlay_is_valid_against_its_schema(rendered_production: list[Manifest]) -> None:
    _assert_valid(rendered_production)


def test_the_validation_catches_a_mistake_in_a_kubernetes_object_and_in_an_operator_object() -> None:
    objects = {name_of(item): item for item in load_base_files()}
    deployment = copy.deepcopy(objects["Deployment/training"])
    deployment["spec"]["replicas"] = "two"
    assert schema_errors(deployment)
    deployment = copy.deepcopy(objects["Deployment/training"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    assert schema_errors(deployment), "strict: an unknown field is an error"
    rabbit = copy.deepcopy(objects["RabbitmqCluster/dx-rabbitmq"])
    rabbit["spec"]["replicas"] = "three"
    assert schema_errors(rabbit)
    postgres = copy.deepcopy(objects["Cluster/dx-postgres"])
    postgres["spec"]["instancez"] = 3
    assert schema_errors(postgres), "an unknown field of an operator object is an error"


# ---- the properties the deployment relies on ------------------------------------------------------


def _sets() -> Iterator[Any]:
    yield pytest.param(load_base_files, id="base-files")
    yield pytest.param(lambda: render(BASE), id="base-rendered")


def objects_of(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.fixture(params=list(_sets()))
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    objects: list[Manifest] = request.param()
    return objects


def test_each_component_is_a_hardened_deployment_of_two_or_more_replicas(manifests: list[Manifest]) -> None:
    deployments = objects_of(manifests, "Deployment")
    assert set(deployments) == set(WORKLOADS)
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, name
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: a writable /tmp on a read-only root"
        assert {port["containerPort"] for port in container["ports"]} == {WORKLOADS[name]}
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: image pinned"


def test_a_nightly_job_dumps_every_service_with_the_backup_command_hardened_like_the_services(
    manifests: list[Manifest],
) -> None:
    cronjob = objects_of(manifests, "CronJob")["dx-backup"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    script = " ".join(container["args"])
    assert "python -m dx_tools.backup dump" in script
    assert all(service in script for service in SERVICES)
    env = {item["name"] for item in container["env"]}
    assert {f"DX_{service.upper()}_DATABASE_URL" for service in SERVICES} <= env
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    policies = list(objects_of(manifests, "NetworkPolicy").values())
    peers = [peer for rule in _allowed_egress(policies, labels) for peer in rule.get("to", [])]
    assert {json.dumps(peer.get("podSelector", {}).get("matchLabels", {})) for peer in peers} >= {
        json.dumps({"cnpg.io/cluster": "dx-postgres"})
    }
    assert not any("ipBlock" in peer or "dx-rabbitmq" in json.dumps(peer) for peer in peers)


def test_each_deployment_has_a_service_and_a_disruption_budget_that_select_its_pods(manifests: list[Manifest]) -> None:
    deployments = objects_of(manifests, "Deployment")
    budgets = objects_of(manifests, "PodDisruptionBudget")
    services = objects_of(manifests, "Service")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets.values() if _labels_match(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, f"{name}: one PodDisruptionBudget"
        budget = covering[0]["spec"]
        assert budget.get("minAvailable", 0) >= 1 or "maxUnavailable" in budget
        assert _labels_match(services[name]["spec"]["selector"], labels)
        assert services[name]["spec"]["ports"][0]["port"] == WORKLOADS[name]


def test_services_take_their_credentials_from_secrets_and_their_own_database(manifests: list[Manifest]) -> None:
    deployments = objects_of(manifests, "Deployment")
    secrets = objects_of(manifests, "Secret")
    for name in SERVICES:
        env = {item["name"]: item for item in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"dx-db-{name}"
        assert env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "dx-broker-credentials"
        assert env[f"DX_{name.upper()}_DATABASE_URL"]["value"].endswith(f"@dx-postgres-rw:5432/{name}")
        assert "guest" not in env["DX_AMQP_URL"]["value"]
    training_env = {e["name"]: e for e in deployments["training"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert training_env["DX_WEBHOOK_SECRETS"]["valueFrom"]["secretKeyRef"]["name"] == "dx-webhook"
    for secret in secrets.values():
        for value in (secret.get("stringData") or {}).values():
            assert "REPLACE_ME" in value or value in {"nomination", "training", "progression", "reporting", "dx",
                                                     "portal", "dx-talent-portal", "dx-talent-portal-verifier",
                                                     "dx-talent-portal-reminders"}, \
                f"{name_of(secret)}: placeholders only"


def test_the_broker_and_the_database_are_operator_clusters_of_three(manifests: list[Manifest]) -> None:
    (rabbit,) = objects_of(manifests, "RabbitmqCluster").values()
    assert rabbit["spec"]["replicas"] == 3
    assert rabbit["spec"]["secretBackend"]["externalSecret"]["name"] == "dx-broker-credentials"
    (postgres,) = objects_of(manifests, "Cluster").values()
    assert postgres["spec"]["instances"] == 3
    databases = {item["spec"]["name"]: item["spec"]["owner"] for item in objects_of(manifests, "Database").values()}
    # Each service, and the portal (its sessions and the reminders it sent), owns a database of its own.
    assert databases == {name: name for name in (*SERVICES, "portal")}
    roles = {role["name"]: role["passwordSecret"]["name"] for role in postgres["spec"]["managed"]["roles"]}
    assert roles == {name: f"dx-db-{name}" for name in (*SERVICES, "portal")}
    assert not [item for item in manifests if item["kind"] == "StatefulSet"], "no home-made StatefulSets"


def test_the_ingress_routes_only_the_portal_and_the_webhook(manifests: list[Manifest]) -> None:
    (ingress,) = objects_of(manifests, "Ingress").values()
    routes = {
        (path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routes == {("/", "portal"), ("/webhooks/elearning", "training")}
    webhook = next(p for r in ingress["spec"]["rules"] for p in r["http"]["paths"] if p["path"] == "/webhooks/elearning")
    assert webhook["pathType"] == "Exact"
    assert ingress["spec"]["tls"]
    assert {service["spec"].get("type", "ClusterIP") for service in objects_of(manifests, "Service").values()} == {
        "ClusterIP"
    }, "nothing else is exposed"


def _allowed_ingress(policies: list[Manifest], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        rule
        for policy in policies
        if "Ingress" in policy["spec"]["policyTypes"]
        and _labels_match(policy["spec"]["podSelector"].get("matchLabels", {}), labels)
        for rule in policy["spec"].get("ingress", [])
    ]


def _allowed_egress(policies: list[Manifest], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        rule
        for policy in policies
        if "Egress" in policy["spec"]["policyTypes"]
        and _labels_match(policy["spec"]["podSelector"].get("matchLabels", {}), labels)
        for rule in policy["spec"].get("egress", [])
    ]


def test_network_policies_deny_by_default_and_open_only_the_needed_paths(manifests: list[Manifest]) -> None:
    policies = list(objects_of(manifests, "NetworkPolicy").values())
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "a default deny of both directions"

    deployments = objects_of(manifests, "Deployment")
    from_ingress_controller = {
        name
        for name, deployment in deployments.items()
        for rule in _allowed_ingress(policies, deployment["spec"]["template"]["metadata"]["labels"])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "ingress-nginx"
    }
    assert from_ingress_controller == {"portal", "training"}

    for name in SERVICES:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        sources = [peer for rule in _allowed_ingress(policies, labels) for peer in rule.get("from", [])]
        assert sources, f"{name}: some ingress is allowed"
        assert all(
            peer.get("podSelector", {}).get("matchLabels") in PORTAL_PODS
            or (name == "training" and "namespaceSelector" in peer)
            for peer in sources
        ), f"{name}: reached only by the portal and its reminder job (and training's webhook by the ingress controller)"
        destinations = [
            (json.dumps(peer, sort_keys=True), tuple(sorted(port["port"] for port in rule.get("ports", []))))
            for rule in _allowed_egress(policies, labels)
            for peer in rule.get("to", [{}])
        ]
        allowed = {
            "dx-rabbitmq": (5672,),
            "dx-postgres": (5432,),
            "kube-dns": (53, 53),
            "ipBlock": (443,),  # the identity provider's keys (JWKS)
        }
        for peer, ports in destinations:
            matched = [key for key in allowed if key in peer]
            assert matched and allowed[matched[0]] == ports, f"{name}: egress to {peer} {ports} is not expected"
        assert {key for peer, _ in destinations for key in allowed if key in peer} >= {"dx-rabbitmq", "dx-postgres", "kube-dns"}


PORTAL_PODS = ({"app.kubernetes.io/name": "portal"}, {"app.kubernetes.io/name": "portal-reminders"})


def test_a_weekday_job_sends_the_reminders_from_the_portal_image_hardened_and_fenced_in(
    manifests: list[Manifest],
) -> None:
    cronjob = objects_of(manifests, "CronJob")["dx-portal-reminders"]
    assert cronjob["spec"]["timeZone"] == "Asia/Tokyo" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    pod = template["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "portal.reminders", "run"]
    assert container["image"].startswith("registry.example.lg.jp/dx-talent/portal:")
    env = {item["name"]: item for item in container["env"]}
    assert env["DX_PORTAL_DATABASE_URL"]["value"].endswith("@dx-postgres-rw:5432/portal")
    for name, key in (("DX_REMINDER_CLIENT_SECRET", "client_secret"), ("DX_SMTP_PASSWORD", "smtp_password")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "dx-portal-reminders", "key": key}
    assert {"DX_SMTP_HOST", "DX_REMINDER_FROM", "DX_REMINDER_NOMINATION_DEADLINE", "DX_REMINDER_FINAL_WEEKS"} <= set(env)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    policies = list(objects_of(manifests, "NetworkPolicy").values())
    egress = [(json.dumps(peer, sort_keys=True), sorted(port["port"] for port in rule.get("ports", [])))
              for rule in _allowed_egress(policies, template["metadata"]["labels"]) for peer in rule.get("to", [])]
    assert any("dx-postgres" in peer and ports == [5432] for peer, ports in egress)
    assert any("ipBlock" in peer and ports == [587] for peer, ports in egress), "the SMTP relay"
    assert not any("dx-rabbitmq" in peer for peer, _ in egress), "the job never touches the broker"
    database = objects_of(manifests, "Database")["dx-portal"]
    assert database["spec"]["owner"] == "portal"
    portal = objects_of(manifests, "Deployment")["portal"]["spec"]["template"]["spec"]["containers"][0]
    portal_env = {item["name"]: item for item in portal["env"]}
    assert portal_env["DX_PORTAL_DATABASE_URL"]["value"] == env["DX_PORTAL_DATABASE_URL"]["value"], "the same database"


def test_no_object_carries_a_real_looking_secret() -> None:
    text = "\n".join(
        json.dumps(document) for path in K8S.rglob("*.yaml") for document in yaml.safe_load_all(path.read_text("utf-8"))
    )
    assert "whsec_" not in text.replace("whsec_REPLACE_ME", ""), "no webhook secret in the manifests"
    assert "guest" not in text, "no guest account anywhere"
    examples = list((PRODUCTION / "secrets").glob("*.example"))
    assert examples, "documented examples of the secret files"
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8")
    assert "deploy/k8s/overlays/production/secrets/*" in gitignore
