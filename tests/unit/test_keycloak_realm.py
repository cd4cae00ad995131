"""The Keycloak realm of docker compose (deploy/keycloak) offers what the local provider offers: the same
clients, scopes, audience, claims and demo users, so the services behave the same behind either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dx_tools.idp import ALL_SCOPES, IDP_DIR, demo_users
from dx_tools.keycloak_realm import render

ROOT = Path(__file__).resolve().parents[2]
REALM: dict[str, Any] = json.loads((ROOT / "deploy" / "keycloak" / "dx-talent-realm.json").read_text(encoding="utf-8"))
LOCAL_CLIENTS = [
    c for c in json.loads((IDP_DIR / "clients.json").read_text(encoding="utf-8"))["clients"] if not c.get("test_only")
]


def scope(name: str) -> dict[str, Any]:
    return next(s for s in REALM["clientScopes"] if s["name"] == name)


def mappers(owner: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in owner.get("protocolMappers", [])}


def test_the_realm_has_the_local_providers_clients_and_scopes() -> None:
    clients = {c["clientId"]: c for c in REALM["clients"]}
    assert set(clients) == {c["client_id"] for c in LOCAL_CLIENTS}
    for local in LOCAL_CLIENTS:
        client = clients[local["client_id"]]
        wanted = set(ALL_SCOPES) if local["scopes"] == "all" else set(local["scopes"])
        assert set(client["optionalClientScopes"]) == wanted
        assert "basic" in client["defaultClientScopes"]  # sub is in the access token
        assert "dx-talent-audience" in client["defaultClientScopes"]
        assert client["publicClient"] is False and client["directAccessGrantsEnabled"] is False
        if "authorization_code" in local["grant_types"]:
            assert client["attributes"]["pkce.code.challenge.method"] == "S256"
            assert client["redirectUris"] == local["redirect_uris"]
            assert "dx-identity" in client["defaultClientScopes"]
        else:
            assert client["serviceAccountsEnabled"] is True
            assert mappers(client)["dx_role"]["config"]["claim.value"] == local["dx_role"]
    assert {s["name"] for s in REALM["clientScopes"]} >= set(ALL_SCOPES)
    assert all(scope(name)["attributes"]["include.in.token.scope"] == "true" for name in ALL_SCOPES)


def test_tokens_carry_the_audience_and_the_dx_claims_but_no_name() -> None:
    audience = mappers(scope("dx-talent-audience"))["audience dx-talent"]["config"]
    assert audience["included.custom.audience"] == "dx-talent"
    assert audience["access.token.claim"] == "true"
    identity = mappers(scope("dx-identity"))
    for claim in ("dx_role", "dx_department", "dx_staff_id"):
        assert identity[claim]["config"]["claim.name"] == claim
        assert identity[claim]["config"]["access.token.claim"] == "true"
    assert mappers(scope("profile"))["full name"]["config"]["access.token.claim"] == "false"
    assert REALM["defaultSignatureAlgorithm"] == "RS256"


def test_the_realm_holds_the_demo_users_with_their_claims() -> None:
    users = {u["username"]: u for u in REALM["users"]}
    for demo in demo_users():
        attributes = users[demo.username]["attributes"]
        assert attributes["dx_role"] == [demo.dx_role]
        assert attributes.get("dx_department") == ([demo.dx_department] if demo.dx_department else None)
        assert attributes.get("dx_staff_id") == ([demo.dx_staff_id] if demo.dx_staff_id else None)
        assert users[demo.username]["realmRoles"] == [demo.dx_role]
    assert set(users) == {demo.username for demo in demo_users()}


def test_the_realm_file_is_current() -> None:
    """Regenerate with `python -m dx_tools.keycloak_realm` after changing clients.json or the demo data."""
    assert (ROOT / "deploy" / "keycloak" / "dx-talent-realm.json").read_text(encoding="utf-8") == render()
