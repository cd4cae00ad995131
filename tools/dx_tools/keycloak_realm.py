"""The Keycloak realm for docker compose (deploy/keycloak/dx-talent-realm.json), made from the same
sources as the local provider: deploy/idp/clients.json, the dx scopes, and the demo users.

`python -m dx_tools.keycloak_realm` rewrites the file; tests/unit/test_keycloak_realm.py checks it is
current. Secrets and the demo password are Keycloak import placeholders (`${VARIABLE:default}`), filled
from the Keycloak container's environment when the realm is first imported.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dx_tools.idp import ALL_SCOPES, DEMO_PASSWORD, IDP_DIR, ROOT, DemoUser, demo_users

REALM_FILE = ROOT / "deploy" / "keycloak" / "dx-talent-realm.json"
ROLES = (
    ("dx_office", "DX推進担当部門 / DX promotion office"),
    ("hr_office", "人財育成・人事担当部門 / HR office"),
    ("info_policy", "情報政策担当部門 / information policy office"),
    ("department", "所属長 / department head"),
    ("trainee", "研修受講者 / trainee"),
)
SCOPE_DESCRIPTIONS = {
    "dx.roster.import": "import department and staff rosters",
    "dx.nominations.write": "nominate and withdraw",
    "dx.nominations.read": "read nominations",
    "dx.training.write": "sessions, curricula, attendance, completions, waivers",
    "dx.training.read": "read sessions and completions",
    "dx.fy.close": "close a fiscal year",
    "dx.progress.read": "read trainees' progress",
    "dx.reports.read": "read reports",
    "dx.audit.read": "read and export the audit trail",
    "dx.contacts.read": "read the e-mail addresses reminders are sent to",
    "dx.ops": "pipeline health and dead letters",
}
HIDDEN = {"include.in.token.scope": "false", "display.on.consent.screen": "false"}


def _attribute_mapper(claim: str) -> dict[str, Any]:
    return {
        "name": claim,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "consentRequired": False,
        "config": {
            "user.attribute": claim,
            "claim.name": claim,
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
            "multivalued": "false",
        },
    }


def _mapper(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": kind,
        "consentRequired": False,
        "config": config,
    }


def client_scopes() -> list[dict[str, Any]]:
    """A realm import that lists client scopes gets none of Keycloak's built-in ones, so `basic` (which
    puts `sub` in access tokens) is listed here too."""
    scopes: list[dict[str, Any]] = [
        {
            "name": "basic",
            "description": "sub and auth_time",
            "protocol": "openid-connect",
            "attributes": HIDDEN,
            "protocolMappers": [
                _mapper("sub", "oidc-sub-mapper", {"access.token.claim": "true", "introspection.token.claim": "true"}),
                _mapper(
                    "auth_time",
                    "oidc-usersessionmodel-note-mapper",
                    {
                        "user.session.note": "AUTH_TIME",
                        "claim.name": "auth_time",
                        "jsonType.label": "long",
                        "id.token.claim": "true",
                        "access.token.claim": "true",
                        "introspection.token.claim": "true",
                    },
                ),
            ],
        },
        {
            "name": "profile",
            "description": "the person's name: ID token and userinfo only, never the access token",
            "protocol": "openid-connect",
            "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
            "protocolMappers": [
                _mapper(
                    "full name",
                    "oidc-full-name-mapper",
                    {
                        "id.token.claim": "true",
                        "access.token.claim": "false",
                        "userinfo.token.claim": "true",
                        "introspection.token.claim": "false",
                    },
                )
            ],
        },
        {
            "name": "dx-identity",
            "description": "dx_role, dx_department, dx_staff_id from the user's attributes",
            "protocol": "openid-connect",
            "attributes": HIDDEN,
            "protocolMappers": [_attribute_mapper(c) for c in ("dx_role", "dx_department", "dx_staff_id")],
        },
        {
            "name": "dx-talent-audience",
            "description": "aud=dx-talent, the audience the dx-talent services accept",
            "protocol": "openid-connect",
            "attributes": HIDDEN,
            "protocolMappers": [
                _mapper(
                    "audience dx-talent",
                    "oidc-audience-mapper",
                    {
                        "included.custom.audience": "dx-talent",
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                        "introspection.token.claim": "true",
                    },
                )
            ],
        },
        {
            "name": "service_account",
            "description": "client_id in client-credentials tokens",
            "protocol": "openid-connect",
            "attributes": HIDDEN,
            "protocolMappers": [
                _mapper(
                    "client_id",
                    "oidc-usersessionmodel-note-mapper",
                    {
                        "user.session.note": "client_id",
                        "claim.name": "client_id",
                        "jsonType.label": "String",
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                        "introspection.token.claim": "true",
                    },
                )
            ],
        },
    ]
    for name in ALL_SCOPES:
        scopes.append(
            {
                "name": name,
                "description": SCOPE_DESCRIPTIONS[name],
                "protocol": "openid-connect",
                "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
            }
        )
    return scopes


def client(entry: dict[str, Any]) -> dict[str, Any]:
    variable = "DX_IDP_CLIENT_SECRET_" + str(entry["client_id"]).upper().replace("-", "_")
    scopes = list(ALL_SCOPES) if entry["scopes"] == "all" else list(entry["scopes"])
    people = "authorization_code" in entry["grant_types"]
    result: dict[str, Any] = {
        "clientId": entry["client_id"],
        "name": entry["client_name"],
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": "${" + variable + ":" + entry["client_secret"] + "}",
        "standardFlowEnabled": people,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": not people,
        "consentRequired": False,
        "fullScopeAllowed": False,
        "frontchannelLogout": False,
        "redirectUris": entry["redirect_uris"],
        "webOrigins": [],
        "attributes": {"access.token.signed.response.alg": "RS256", "id.token.signed.response.alg": "RS256"},
        "defaultClientScopes": [
            "basic",
            "dx-talent-audience",
            *(["profile", "dx-identity"] if people else ["service_account"]),
        ],
        "optionalClientScopes": scopes,
    }
    if people:
        result["attributes"].update(
            {
                "pkce.code.challenge.method": "S256",
                "post.logout.redirect.uris": "##".join(entry["post_logout_redirect_uris"]),
                "use.refresh.tokens": "true",
            }
        )
    else:
        result["attributes"]["access.token.lifespan"] = "900"
        result["protocolMappers"] = [
            _mapper(
                "dx_role",
                "oidc-hardcoded-claim-mapper",
                {
                    "claim.name": "dx_role",
                    "claim.value": entry["dx_role"],
                    "jsonType.label": "String",
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "introspection.token.claim": "true",
                },
            )
        ]
    return result


def user(person: DemoUser) -> dict[str, Any]:
    family, _, given = person.name.partition(" ")
    attributes = {"dx_role": [person.dx_role]}
    if person.dx_department:
        attributes["dx_department"] = [person.dx_department]
    if person.dx_staff_id:
        attributes["dx_staff_id"] = [person.dx_staff_id]
    return {
        "username": person.username,
        "enabled": True,
        "emailVerified": False,
        "lastName": family,
        "firstName": given or family,
        "attributes": attributes,
        "credentials": [{"type": "password", "value": "${DX_DEMO_PASSWORD:" + DEMO_PASSWORD + "}", "temporary": False}],
        "realmRoles": [person.dx_role],
        "requiredActions": [],
    }


def user_profile() -> dict[str, Any]:
    """The declared user attributes (Keycloak 24+): the dx claims are set and seen by administrators only."""
    admin_only = {"view": ["admin"], "edit": ["admin"]}
    readable = {"view": ["admin", "user"], "edit": ["admin"]}
    return {
        "unmanagedAttributePolicy": "ADMIN_VIEW",
        "attributes": [
            {
                "name": "username",
                "displayName": "User name",
                "validations": {"length": {"min": 3, "max": 255}, "username-prohibited-characters": {}},
                "permissions": readable,
                "multivalued": False,
            },
            {
                "name": "email",
                "displayName": "Email",
                "validations": {"email": {}, "length": {"max": 255}},
                "permissions": readable,
                "multivalued": False,
            },
            {
                "name": "firstName",
                "displayName": "First name",
                "validations": {"length": {"max": 255}},
                "permissions": readable,
                "multivalued": False,
            },
            {
                "name": "lastName",
                "displayName": "Last name",
                "validations": {"length": {"max": 255}},
                "permissions": readable,
                "multivalued": False,
            },
            {
                "name": "dx_role",
                "displayName": "dx-talent role",
                "validations": {"options": {"options": [name for name, _ in ROLES]}},
                "permissions": admin_only,
                "multivalued": False,
            },
            {
                "name": "dx_department",
                "displayName": "Department code",
                "validations": {"length": {"max": 32}},
                "permissions": admin_only,
                "multivalued": False,
            },
            {
                "name": "dx_staff_id",
                "displayName": "Staff id",
                "validations": {"length": {"max": 32}},
                "permissions": admin_only,
                "multivalued": False,
            },
        ],
        "groups": [],
    }


def realm() -> dict[str, Any]:
    entries = json.loads((IDP_DIR / "clients.json").read_text(encoding="utf-8"))["clients"]
    return {
        "realm": "dx-talent",
        "displayName": "デジタル人財育成 / dx-talent",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "rememberMe": False,
        "loginWithEmailAllowed": False,
        "duplicateEmailsAllowed": True,
        "editUsernameAllowed": False,
        "bruteForceProtected": True,
        "failureFactor": 10,
        "defaultSignatureAlgorithm": "RS256",
        "accessTokenLifespan": 900,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 28800,
        "revokeRefreshToken": True,
        "internationalizationEnabled": True,
        "supportedLocales": ["ja", "en"],
        "defaultLocale": "ja",
        "roles": {"realm": [{"name": name, "description": text} for name, text in ROLES]},
        "clientScopes": client_scopes(),
        "defaultDefaultClientScopes": ["basic", "dx-talent-audience"],
        "defaultOptionalClientScopes": [],
        "clients": [client(entry) for entry in entries if not entry.get("test_only")],
        "users": [user(person) for person in demo_users()],
        "components": {
            "org.keycloak.userprofile.UserProfileProvider": [
                {
                    "providerId": "declarative-user-profile",
                    "subComponents": {},
                    "config": {
                        "kc.user.profile.config": [
                            json.dumps(user_profile(), ensure_ascii=False, separators=(",", ":"))
                        ]
                    },
                }
            ]
        },
    }


def render() -> str:
    return json.dumps(realm(), ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    REALM_FILE.parent.mkdir(parents=True, exist_ok=True)
    REALM_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {REALM_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
