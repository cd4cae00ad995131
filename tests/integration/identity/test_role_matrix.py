"""The role × endpoint matrix (POLICY.md §5, CONTRACT.md "Identity"), over HTTP with real tokens from the IdP.

Every route of every service (walked from the apps themselves, so a new route without an entry fails
here) is asked with no token, an expired, a tampered, an unsigned (`alg: none`), a wrong-audience and a
wrong-issuer token (each → 401 with `WWW-Authenticate`), with a token lacking the route's scope (403
SCOPE_MISSING), and as each role — the offices, a head of the department concerned and of another, the
trainee concerned and another trainee — with the exact status expected. None of the requests may change
anything in any service's tables.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from dx_shared.access import OPEN_PATHS, required_scope_of
from dx_shared.roles import Scope
from dx_shared.settings import Settings
from tests.support.identity import ALL_SCOPES, bearer, token_for
from tests.support.idp import SHORT_LIVED, Idp
from tests.support.local_issuer import LocalIssuer
from tests.support.services import running_app

pytestmark = pytest.mark.integration

SERVICES = ("nomination", "training", "progression", "reporting")
DATA = Path(__file__).parents[2] / "data" / "nomination"
UNKNOWN_ID = str(uuid.UUID(int=7))

# The people asked, in the order of the expected-status strings below. The request concerns department
# 0101 and staff 001001 (a member of 0101) wherever a route names one.
ROLES: dict[str, dict[str, str]] = {
    "dx_office": {"role": "dx_office"},
    "hr_office": {"role": "hr_office"},
    "info_policy": {"role": "info_policy"},
    "head_0101": {"role": "department", "department": "0101"},
    "head_0201": {"role": "department", "department": "0201"},
    "trainee_self": {"role": "trainee", "staff_id": "001001"},
    "trainee_other": {"role": "trainee", "staff_id": "001004"},
}


@dataclass(frozen=True)
class Case:
    url: str
    scope: Scope
    expected: str  # one status per role in ROLES, space-separated
    body: dict[str, Any] | list[Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def statuses(self) -> dict[str, int]:
        codes = [int(code) for code in self.expected.split()]
        assert len(codes) == len(ROLES)
        return dict(zip(ROLES, codes, strict=True))


CSV = {"content-type": "text/csv"}
DEPARTMENTS_CSV = (DATA / "departments_2024_sjis.csv").read_bytes()
STAFF_CSV = (DATA / "staff_2024_sjis.csv").read_bytes()
NOMINATIONS_CSV = (DATA / "nominations_2024_sjis.csv").read_bytes()

#         role order:  dx  hr  info head head trainee trainee
#                      off off pol  0101 0201 self   other
MATRIX: dict[tuple[str, str, str], Case] = {
    # ---- nomination (nothing imported: dry runs and refusals only, so nothing is written) ----
    ("nomination", "POST", "/api/v1/departments/import"): Case(
        "/api/v1/departments/import?fiscal_year=2024&dry_run=true", Scope.ROSTER_IMPORT,
        "200 200 403 403 403 403 403", content=DEPARTMENTS_CSV, headers=CSV),
    ("nomination", "POST", "/api/v1/staff/import"): Case(
        "/api/v1/staff/import?fiscal_year=2024&dry_run=true", Scope.ROSTER_IMPORT,  # no department list yet
        "422 422 403 403 403 403 403", content=STAFF_CSV, headers=CSV),
    ("nomination", "POST", "/api/v1/nominations"): Case(
        "/api/v1/nominations", Scope.NOMINATIONS_WRITE,
        "422 422 403 422 422 422 403", body={"staff_id": "001001", "fiscal_year": 2024, "slot": "self"}),
    ("nomination", "POST", "/api/v1/nominations/{nomination_id}/withdraw"): Case(
        f"/api/v1/nominations/{UNKNOWN_ID}/withdraw", Scope.NOMINATIONS_WRITE,
        "404 404 404 404 404 404 404", body={"reason": "異動のため"}),
    ("nomination", "POST", "/api/v1/nominations/import"): Case(
        "/api/v1/nominations/import?fiscal_year=2024&dry_run=true", Scope.NOMINATIONS_WRITE,
        "200 200 403 403 403 403 403", content=NOMINATIONS_CSV, headers=CSV),
    ("nomination", "GET", "/api/v1/nominations"): Case(
        "/api/v1/nominations?fiscal_year=2024", Scope.NOMINATIONS_READ, "200 200 200 200 200 200 200"),
    ("nomination", "GET", "/api/v1/nominations/{nomination_id}"): Case(
        f"/api/v1/nominations/{UNKNOWN_ID}", Scope.NOMINATIONS_READ, "404 404 404 404 404 404 404"),
    ("nomination", "GET", "/api/v1/departments"): Case(
        "/api/v1/departments?fiscal_year=2024", Scope.NOMINATIONS_READ, "200 200 200 200 200 200 200"),
    ("nomination", "GET", "/api/v1/departments/{code}/nominations"): Case(
        "/api/v1/departments/0101/nominations?fiscal_year=2024", Scope.NOMINATIONS_READ,
        "404 404 404 404 403 403 403"),
    ("nomination", "GET", "/api/v1/staff"): Case(
        "/api/v1/staff?q=0010&fiscal_year=2024", Scope.NOMINATIONS_READ, "200 200 403 403 403 403 403"),
    ("nomination", "GET", "/api/v1/departments/{code}/staff"): Case(
        "/api/v1/departments/0101/staff?fiscal_year=2024", Scope.NOMINATIONS_READ,
        "200 200 200 200 403 403 403"),
    ("nomination", "GET", "/api/v1/contacts"): Case(
        "/api/v1/contacts?fiscal_year=2024", Scope.CONTACTS_READ, "200 200 403 403 403 403 403"),
    # ---- training (no sessions: every permitted write fails on its rule, so nothing is written) ----
    ("training", "POST", "/api/v1/sessions"): Case(
        "/api/v1/sessions", Scope.TRAINING_WRITE, "422 422 403 403 403 403 403",
        body={"fiscal_year": 2025, "method": "e_learning", "audience": "promoter", "title": "DX基礎"}),
    ("training", "GET", "/api/v1/sessions"): Case(
        "/api/v1/sessions?fiscal_year=2025", Scope.TRAINING_READ, "200 200 200 200 200 200 200"),
    ("training", "PUT", "/api/v1/curricula/{fiscal_year}/{stage}"): Case(
        "/api/v1/curricula/2025/1", Scope.TRAINING_WRITE, "404 404 403 403 403 403 403",
        body={"session_ids": ["S-UNKNOWN"]}),
    ("training", "GET", "/api/v1/curricula/{fiscal_year}/{stage}"): Case(
        "/api/v1/curricula/2025/1", Scope.TRAINING_READ, "404 404 404 404 404 404 404"),
    ("training", "POST", "/api/v1/sessions/{session_id}/attendance"): Case(
        "/api/v1/sessions/S-UNKNOWN/attendance", Scope.TRAINING_WRITE, "404 404 403 403 403 403 403",
        body={"staff_ids": ["001001"]}),
    ("training", "POST", "/api/v1/completions/import"): Case(
        "/api/v1/completions/import", Scope.TRAINING_WRITE, "200 200 403 403 403 403 403",
        content=b"session_id,staff_id,occurred_at\n", headers=CSV),
    ("training", "POST", "/api/v1/completions/waive"): Case(
        "/api/v1/completions/waive", Scope.TRAINING_WRITE, "404 404 403 403 403 403 403",
        body={"session_id": "S-UNKNOWN", "staff_id": "001001", "reason": "病気療養のため"}),
    ("training", "GET", "/api/v1/completions"): Case(
        "/api/v1/completions?staff_id=001001", Scope.TRAINING_READ, "200 200 200 403 403 200 200"),
    ("training", "GET", "/api/v1/completions/unmatched"): Case(
        "/api/v1/completions/unmatched", Scope.TRAINING_READ, "200 200 200 403 403 403 403"),
    ("training", "POST", "/api/v1/completions/unmatched/{unmatched_id}/match"): Case(
        f"/api/v1/completions/unmatched/{UNKNOWN_ID}/match", Scope.TRAINING_WRITE, "404 404 403 403 403 403 403",
        body={"staff_id": "001001"}),
    ("training", "POST", "/api/v1/completions/unmatched/{unmatched_id}/dismiss"): Case(
        f"/api/v1/completions/unmatched/{UNKNOWN_ID}/dismiss", Scope.TRAINING_WRITE, "404 404 403 403 403 403 403",
        body={"reason": "テスト用アカウントのため"}),
    # ---- progression ----
    ("progression", "POST", "/api/v1/fiscal-years/{fiscal_year}/close"): Case(
        "/api/v1/fiscal-years/not-a-year/close", Scope.FY_CLOSE, "422 403 403 403 403 403 403"),
    ("progression", "GET", "/api/v1/trainees/{staff_id}"): Case(
        "/api/v1/trainees/001001", Scope.PROGRESS_READ, "404 404 404 403 403 404 403"),
    ("progression", "GET", "/api/v1/decisions"): Case(
        "/api/v1/decisions?fiscal_year=2024&state=pending", Scope.PROGRESS_READ, "200 200 403 403 403 403 403"),
    # ---- reporting ----
    ("reporting", "GET", "/api/v1/reports/plan"): Case(
        "/api/v1/reports/plan", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/plan.csv"): Case(
        "/api/v1/reports/plan.csv", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/departments"): Case(
        "/api/v1/reports/departments?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 403 403"),
    ("reporting", "GET", "/api/v1/reports/departments.csv"): Case(
        "/api/v1/reports/departments.csv?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 403 403"),
    ("reporting", "GET", "/api/v1/reports/baseline"): Case(
        "/api/v1/reports/baseline?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/baseline.csv"): Case(
        "/api/v1/reports/baseline.csv?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/departments/{code}/trainees"): Case(
        "/api/v1/reports/departments/0101/trainees?fiscal_year=2024", Scope.PROGRESS_READ,
        "200 200 200 200 403 403 403"),
    ("reporting", "GET", "/api/v1/reports/trainees/{staff_id}"): Case(
        "/api/v1/reports/trainees/001001", Scope.PROGRESS_READ, "404 404 404 404 404 404 403"),
    ("reporting", "GET", "/api/v1/reports/trainees/{staff_id}.csv"): Case(
        "/api/v1/reports/trainees/001001.csv", Scope.PROGRESS_READ, "404 404 404 404 404 404 403"),
    ("reporting", "GET", "/api/v1/reports/sessions"): Case(
        "/api/v1/reports/sessions?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/sessions.csv"): Case(
        "/api/v1/reports/sessions.csv?fiscal_year=2024", Scope.REPORTS_READ, "200 200 200 200 200 200 200"),
    ("reporting", "GET", "/api/v1/reports/pipeline"): Case(
        "/api/v1/reports/pipeline", Scope.REPORTS_READ, "200 200 200 403 403 403 403"),
    ("reporting", "GET", "/api/v1/reports/pipeline.csv"): Case(
        "/api/v1/reports/pipeline.csv", Scope.REPORTS_READ, "200 200 200 403 403 403 403"),
    # The dashboard moved to the portal: reporting's `/` only sends a token holder there.
    ("reporting", "GET", "/"): Case("/?fiscal_year=2024", Scope.REPORTS_READ, "303 303 303 303 303 303 303"),
    # Every service's audit trail: the offices and the information-policy office only.
    **{
        (service, "GET", path): Case(path, Scope.AUDIT_READ, "200 200 200 403 403 403 403")
        for service in SERVICES
        for path in ("/api/v1/audit", "/api/v1/audit.csv")
    },
}  # fmt: skip

# Open by design: the probes, and the webhook that proves itself with its Standard Webhooks signature.
OPEN_ROUTES = {
    (service, method, path)
    for service in SERVICES
    for method, path in (("GET", "/healthz"), ("GET", "/readyz"))
} | {("training", "POST", "/webhooks/elearning")}


REFUSAL_CODES = {"ROLE_NOT_PERMITTED", "WAIVER_NOT_PERMITTED"}


def api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Any]]:
    """(path, methods, dependant) of every HTTP route, also those of included routers."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, set(route.methods), route.dependant
        elif hasattr(route, "effective_route_contexts"):  # FastAPI's lazily included routers
            for context in route.effective_route_contexts():
                if context.methods:
                    yield context.path, set(context.methods), context.dependant


def routes_of(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    return {
        (service, method, path) for path, methods, _ in api_routes(app) for method in methods - {"HEAD", "OPTIONS"}
    }


def scope_of(dependant: Any) -> str | None:
    scopes = {required_scope_of(dependency.call) for dependency in dependant.dependencies}
    scopes.discard(None)
    return scopes.pop() if len(scopes) == 1 else None


async def snapshot(settings: Settings) -> dict[str, int]:
    """Row counts of every table of every service (the audit trail, which records refusals, excepted)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'audit%'",
            list(SERVICES),
        )
        return {
            f"{row['table_schema']}.{row['table_name']}": await conn.fetchval(
                f'SELECT count(*) FROM "{row["table_schema"]}"."{row["table_name"]}"'
            )
            for row in tables
        }
    finally:
        await conn.close()


async def ask(client: httpx.AsyncClient, method: str, case: Case, headers: dict[str, str]) -> httpx.Response:
    return await client.request(
        method,
        case.url,
        json=case.body if case.content is None else None,
        content=case.content,
        headers={**case.headers, **headers},
    )


def b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B")
    return f"{header}.{payload}.{signature[:5]}{flipped}{signature[6:]}"


def unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature (plain base64 of JSON: no crypto involved)."""
    payload = token.split(".")[1]
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


async def test_every_route_has_an_entry_in_the_matrix_and_names_its_scope(settings: Settings) -> None:
    every_route: set[tuple[str, str, str]] = set()
    unscoped = []
    for service in SERVICES:
        app = importlib.import_module(f"{service}.main").create_app(settings)
        every_route |= routes_of(service, app)
        for path, _, dependant in api_routes(app):
            if path not in OPEN_PATHS and scope_of(dependant) is None:
                unscoped.append((service, path))
    assert unscoped == [], "every route except the open ones must name its scope (requires_scope)"
    assert every_route - OPEN_ROUTES == set(MATRIX), "a route without a matrix entry, or an entry for no route"
    for (service, method, path), case in MATRIX.items():
        app = importlib.import_module(f"{service}.main").create_app(settings)
        dependant = next(d for p, methods, d in api_routes(app) if p == path and method in methods)
        assert scope_of(dependant) == case.scope.value, (service, path)


async def ask_everyone(
    client: httpx.AsyncClient,
    name: str,
    method: str,
    case: Case,
    bad_tokens: dict[str, dict[str, str]],
    without_scope: dict[Scope, dict[str, str]],
    people: dict[str, dict[str, str]],
    failures: list[str],
) -> list[int]:
    for label, headers in bad_tokens.items():
        response = await ask(client, method, case, headers)
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 401 or not challenge.startswith('Bearer realm="dx-talent"'):
            failures.append(f"{name} [{label}] → {response.status_code} {challenge!r}")
        elif response.headers["content-type"] != "application/problem+json":
            failures.append(f"{name} [{label}] not problem+json")
    response = await ask(client, method, case, without_scope[case.scope])
    if response.status_code != 403 or response.json().get("code") != "SCOPE_MISSING":
        failures.append(f"{name} [no scope] → {response.status_code}")
    statuses = []
    for role, expected in case.statuses().items():
        response = await ask(client, method, case, people[role])
        statuses.append(response.status_code)
        if response.status_code != expected:
            failures.append(f"{name} [{role}] → {response.status_code}, expected {expected}: {response.text[:160]}")
        if response.status_code == 403 and response.json().get("code") not in REFUSAL_CODES:
            failures.append(f"{name} [{role}] refused as {response.text[:160]}")
        if "no-store" not in response.headers.get("cache-control", ""):
            failures.append(f"{name} [{role}] may be cached")
    return statuses


async def test_the_role_matrix_over_http_with_real_tokens(settings: Settings, idp: Idp) -> None:
    settings = settings.model_copy(update={"oidc_leeway_seconds": 0})
    short_lived = idp.client_token(*SHORT_LIVED, scopes=ALL_SCOPES)
    office_token = token_for("dx_office")
    people = {name: bearer(**claims) for name, claims in ROLES.items()}  # type: ignore[arg-type]
    without_scope = {
        scope: bearer("dx_office", scopes=[s for s in ALL_SCOPES if s != scope.value])
        for scope in {case.scope for case in MATRIX.values()}
    }
    # A key the services do not trust (its issuer's JWKS is never consulted by them).
    with LocalIssuer(audience=idp.audience) as stranger:
        untrusted = stranger.token(dx_role="dx_office", scope=" ".join(ALL_SCOPES))
        forged = stranger.token(iss=idp.issuer, dx_role="dx_office", scope=" ".join(ALL_SCOPES))
    bad_tokens = {
        "none": {},
        "tampered": {"Authorization": f"Bearer {tampered(office_token)}"},
        "alg none": {"Authorization": f"Bearer {unsigned(office_token)}"},
        "untrusted issuer": {"Authorization": f"Bearer {untrusted}"},
        "forged issuer": {"Authorization": f"Bearer {forged}"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "basic": {"Authorization": "Basic ZHg6ZHg="},
    }
    await asyncio.sleep(3)  # the short-lived client's token (2 s) has now expired
    bad_tokens["expired"] = {"Authorization": f"Bearer {short_lived}"}

    failures: list[str] = []
    observed: dict[tuple[str, str, str], list[int]] = {}
    changed: dict[str, Any] = {}
    for service in SERVICES:
        module = importlib.import_module(f"{service}.main")
        routes = {(method, path): case for (owner, method, path), case in MATRIX.items() if owner == service}
        async with running_app(module.create_app, settings, headers={}) as client:
            before = await snapshot(settings)  # after start-up: the migrations have run
            for (method, path), case in routes.items():
                observed[(service, method, path)] = await ask_everyone(
                    client, f"{service} {method} {path}", method, case, bad_tokens, without_scope, people, failures
                )
        # The same genuine token, presented to a service configured for another audience.
        elsewhere_settings = settings.model_copy(update={"oidc_audience": "another-api"})
        async with running_app(module.create_app, elsewhere_settings, headers={}) as elsewhere:
            for (method, path), case in routes.items():
                response = await ask(elsewhere, method, case, {"Authorization": f"Bearer {office_token}"})
                if response.status_code != 401 or "invalid_token" not in response.headers["www-authenticate"]:
                    failures.append(f"{service} {method} {path} [wrong audience] → {response.status_code}")
            after = await snapshot(settings)
        changed.update({table: (before.get(table), n) for table, n in after.items() if before.get(table) != n})

    table = "\n".join(f"{' '.join(str(s) for s in v)}  {k}" for k, v in observed.items())
    assert failures == [], "\n".join(failures) + "\n\nobserved:\n" + table
    assert changed == {}, "a request of the matrix changed a table"
