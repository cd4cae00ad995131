"""Access tokens: only a genuine, current token from our issuer for our audience proves who is asking."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from dx_shared.auth import (
    ClaimNames,
    IdentityProviderUnavailable,
    JwksCache,
    RoleMissing,
    TokenRefused,
    TokenVerifier,
    caller_from_claims,
)
from dx_shared.roles import Role

ISSUER = "http://issuer.test"
AUDIENCE = "dx-talent"


class FakeIssuer:
    """Discovery and JWKS documents, counted, and able to go down."""

    def __init__(self, *keys: Any) -> None:
        self.keys = list(keys)
        self.requests: list[str] = []
        self.down = False

    async def fetch(self, url: str) -> Mapping[str, Any]:
        self.requests.append(url)
        if self.down:
            raise httpx.ConnectError("refused")
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"}
        if url == f"{ISSUER}/jwks":
            return KeySet(self.keys).as_dict(private=False)
        raise httpx.HTTPStatusError("not found", request=httpx.Request("GET", url), response=httpx.Response(404))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "person-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "scope": "dx.reports.read dx.nominations.read",
        "dx_role": "dx_office",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def sign(key: Any, alg: str = "RS256", **overrides: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims(**overrides), key, algorithms=[alg])


def verifier_for(issuer: FakeIssuer, clock: Clock | None = None, min_refresh: float = 10.0) -> TokenVerifier:
    keys = JwksCache(
        issuer=ISSUER, jwks_url=None, fetch=issuer.fetch, min_refresh_seconds=min_refresh, clock=clock or Clock()
    )
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=keys, leeway_seconds=5)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def refusal_of(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRefused) as refused:
        await verifier.verify(token)
    return refused.value.code


async def test_a_genuine_token_from_the_issuer_is_accepted_with_its_claims() -> None:
    key = rsa("k1")
    verified = await verifier_for(FakeIssuer(key)).verify(sign(key))
    assert verified["sub"] == "person-1"
    assert verified["dx_role"] == "dx_office"


@pytest.mark.parametrize("alg", ["PS256", "RS512"])
async def test_other_rsa_algorithms_are_accepted(alg: str) -> None:
    key = rsa("k1")
    assert (await verifier_for(FakeIssuer(key)).verify(sign(key, alg)))["sub"] == "person-1"


async def test_an_elliptic_curve_token_is_accepted() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "ec1"})
    assert (await verifier_for(FakeIssuer(key)).verify(sign(key, "ES256")))["sub"] == "person-1"


async def test_an_expired_token_is_refused_as_expired() -> None:
    key = rsa("k1")
    token = sign(key, exp=int(time.time()) - 60)
    assert await refusal_of(verifier_for(FakeIssuer(key)), token) == "TOKEN_EXPIRED"


async def test_a_token_expired_within_the_leeway_is_still_accepted() -> None:
    key = rsa("k1")
    token = sign(key, exp=int(time.time()) - 2)
    assert (await verifier_for(FakeIssuer(key)).verify(token))["sub"] == "person-1"


async def test_a_token_not_yet_valid_is_refused() -> None:
    key = rsa("k1")
    token = sign(key, nbf=int(time.time()) + 600)
    assert await refusal_of(verifier_for(FakeIssuer(key)), token) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    "overrides",
    [{"iss": "http://other-issuer.test"}, {"aud": "someone-else"}, {"aud": None}, {"iss": None}, {"exp": None}],
    ids=["wrong issuer", "wrong audience", "no audience", "no issuer", "no expiry"],
)
async def test_a_token_not_meant_for_us_is_refused(overrides: dict[str, Any]) -> None:
    key = rsa("k1")
    assert await refusal_of(verifier_for(FakeIssuer(key)), sign(key, **overrides)) == "TOKEN_INVALID"


async def test_an_audience_list_containing_ours_is_accepted() -> None:
    key = rsa("k1")
    assert (await verifier_for(FakeIssuer(key)).verify(sign(key, aud=["api://x", AUDIENCE])))["sub"] == "person-1"


async def test_a_tampered_signature_is_refused() -> None:
    key = rsa("k1")
    header, payload, signature = sign(key).split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert await refusal_of(verifier_for(FakeIssuer(key)), f"{header}.{payload}.{flipped}") == "TOKEN_INVALID"


async def test_a_tampered_payload_is_refused() -> None:
    key = rsa("k1")
    header, _, signature = sign(key).split(".")
    forged = b64(claims(dx_role="dx_office", sub="someone-else"))
    assert await refusal_of(verifier_for(FakeIssuer(key)), f"{header}.{forged}.{signature}") == "TOKEN_INVALID"


async def test_an_unsigned_token_alg_none_is_refused() -> None:
    key = rsa("k1")
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert await refusal_of(verifier_for(FakeIssuer(key)), unsigned) == "TOKEN_INVALID"


async def test_an_hmac_token_is_refused() -> None:
    # A shared secret proves nothing about the issuer; HS* also opens the public-key-as-secret confusion.
    key = rsa("k1")
    secret = OctKey.import_key(b"a-shared-secret-of-enough-length-0123456789")
    forged = jwt.encode({"alg": "HS256", "kid": "k1"}, claims(), secret, algorithms=["HS256"])
    assert await refusal_of(verifier_for(FakeIssuer(key)), forged) == "TOKEN_INVALID"


async def test_a_token_signed_by_a_key_the_issuer_does_not_publish_is_refused() -> None:
    published, stranger = rsa("k1"), rsa("k1")
    assert await refusal_of(verifier_for(FakeIssuer(published)), sign(stranger)) == "TOKEN_INVALID"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "Bearer x", "ü.ü.ü"])
async def test_garbage_is_refused_as_invalid(garbage: str) -> None:
    assert await refusal_of(verifier_for(FakeIssuer(rsa("k1"))), garbage) == "TOKEN_INVALID"


async def test_keys_are_cached_between_requests() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    verifier = verifier_for(issuer)
    for _ in range(5):
        await verifier.verify(sign(key))
    assert issuer.requests == [f"{ISSUER}/.well-known/openid-configuration", f"{ISSUER}/jwks"]


async def test_a_rotated_key_is_fetched_when_a_token_names_it() -> None:
    old, new = rsa("old"), rsa("new")
    issuer = FakeIssuer(old)
    clock = Clock()
    verifier = verifier_for(issuer, clock)
    await verifier.verify(sign(old))
    issuer.keys = [old, new]
    clock.now += 11
    assert (await verifier.verify(sign(new)))["sub"] == "person-1"
    assert verifier.keys.fetches == 2


async def test_unknown_key_ids_refetch_at_most_once_per_interval() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    clock = Clock()
    verifier = verifier_for(issuer, clock, min_refresh=10)
    await verifier.verify(sign(key))
    for n in range(20):
        assert await refusal_of(verifier, sign(rsa(f"made-up-{n}"))) == "TOKEN_INVALID"
    assert verifier.keys.fetches == 1
    clock.now += 11
    assert await refusal_of(verifier, sign(rsa("made-up-late"))) == "TOKEN_INVALID"
    assert verifier.keys.fetches == 2


async def test_an_unreachable_issuer_with_no_cached_key_is_unavailable_not_a_refusal() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    issuer.down = True
    with pytest.raises(IdentityProviderUnavailable):
        await verifier_for(issuer).verify(sign(key))


async def test_an_unreachable_issuer_does_not_matter_while_the_cached_key_fits() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    verifier = verifier_for(issuer)
    await verifier.verify(sign(key))
    issuer.down = True
    assert (await verifier.verify(sign(key)))["sub"] == "person-1"


async def test_an_issuer_back_up_is_asked_again_at_once() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    verifier = verifier_for(issuer)
    issuer.down = True
    with pytest.raises(IdentityProviderUnavailable):
        await verifier.verify(sign(key))
    issuer.down = False
    assert (await verifier.verify(sign(key)))["sub"] == "person-1"


async def test_a_configured_jwks_url_skips_discovery() -> None:
    key = rsa("k1")
    issuer = FakeIssuer(key)
    keys = JwksCache(issuer=ISSUER, jwks_url=f"{ISSUER}/jwks", fetch=issuer.fetch)
    await TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=keys).verify(sign(key))
    assert issuer.requests == [f"{ISSUER}/jwks"]


# ---- claims → caller (pure) -------------------------------------------------------------------


def test_a_person_token_names_role_department_staff_and_scopes() -> None:
    caller = caller_from_claims(
        claims(dx_role="department", dx_department="0101", scope="dx.nominations.write dx.nominations.read"),
        ClaimNames(),
    )
    assert caller.role is Role.DEPARTMENT
    assert caller.department_code == "0101"
    assert caller.subject == "person-1"
    assert caller.scopes == frozenset({"dx.nominations.write", "dx.nominations.read"})
    assert caller.client_id is None


def test_a_program_token_names_its_client() -> None:
    caller = caller_from_claims(claims(sub=None, client_id="dx-loader", dx_role="dx_office"), ClaimNames())
    assert caller.client_id == "dx-loader"
    assert caller.subject == "dx-loader"


def test_entra_style_claims_are_read_through_configured_names() -> None:
    names = ClaimNames(role="roles", department="dept", staff_id="employeeid", scope="scp")
    caller = caller_from_claims(
        {"sub": "x", "roles": ["Unrelated.Role", "trainee"], "employeeid": "001001", "scp": "dx.progress.read"},
        names,
    )
    assert caller.role is Role.TRAINEE
    assert caller.staff_id == "001001"
    assert caller.scopes == frozenset({"dx.progress.read"})


@pytest.mark.parametrize("role", [None, "", "admin", ["nobody"], 7])
def test_a_token_without_a_known_role_gives_no_caller(role: Any) -> None:
    with pytest.raises(RoleMissing) as missing:
        caller_from_claims(claims(dx_role=role), ClaimNames())
    assert missing.value.code == "ROLE_MISSING"


def test_a_department_head_without_a_department_gives_no_caller() -> None:
    with pytest.raises(RoleMissing) as missing:
        caller_from_claims(claims(dx_role="department"), ClaimNames())
    assert missing.value.code == "DEPARTMENT_MISSING"


def test_a_trainee_without_a_staff_id_gives_no_caller() -> None:
    with pytest.raises(RoleMissing) as missing:
        caller_from_claims(claims(dx_role="trainee"), ClaimNames())
    assert missing.value.code == "STAFF_ID_MISSING"
