"""What a token check costs per request: `uv run python -m dx_bench auth [--requests N]`.

Builds an app with the services' own middleware (correlation id, security headers, token authentication)
and two cheap routes: an open one (the baseline, like /healthz) and one that needs a verified token and a
scope. Both are called N times in-process (httpx ASGI transport, no network), in the same run, and the
ratio is printed with the machine load (the machine is shared: compare ratios, not absolute times). The
keys are minted here and the JWKS is served by an injected fetcher, so the figure is the verification
itself (signature, claims, caller), not the identity provider's latency. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from dx_shared.access import AuthenticationMiddleware, CallerDep, requires_scope
from dx_shared.auth import ClaimNames, TokenVerifier
from dx_shared.hardening import SecurityHeadersMiddleware
from dx_shared.roles import Scope
from dx_shared.service import CorrelationMiddleware
from dx_shared.settings import Settings

ISSUER = "http://bench.invalid"


def _app(verifier: TokenVerifier) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def open_route() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/cheap", dependencies=[requires_scope(Scope.REPORTS_READ)])
    async def authenticated_route(caller: CallerDep) -> dict[str, str]:
        return {"role": caller.role.value}

    app.add_middleware(AuthenticationMiddleware, verifier=verifier, names=ClaimNames())
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CorrelationMiddleware, service="bench", max_body=1024)
    return app


def _token(key: Any, alg: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "dx-talent", "sub": "bench", "iat": now, "nbf": now, "exp": now + 3600,
              "scope": Scope.REPORTS_READ.value, "dx_role": "dx_office"}  # fmt: skip
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


async def _time(client: httpx.AsyncClient, path: str, headers: dict[str, str], requests: int) -> list[float]:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return timings


async def run(requests: int) -> None:
    keys: dict[str, RSAKey | ECKey] = {
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "rsa"}),
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "ec"}),
    }
    jwks = KeySet(list(keys.values())).as_dict(private=False)

    async def fetch(url: str) -> Mapping[str, Any]:
        return {"jwks_uri": f"{ISSUER}/jwks"} if url.endswith("openid-configuration") else jwks

    settings = Settings(oidc_issuer=ISSUER)
    app = _app(TokenVerifier.from_settings(settings, fetch=fetch))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        print(f"{requests} requests each, in-process; load average {os.getloadavg()[0]:.2f} "
              f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
        await _time(client, "/healthz", {}, 50)  # warm up
        baseline = await _time(client, "/healthz", {}, requests)
        print(f"  open route (baseline)        median {statistics.median(baseline) * 1e3:7.3f} ms")
        for alg, key in keys.items():
            headers = {"Authorization": f"Bearer {_token(key, alg)}"}
            await _time(client, "/api/v1/cheap", headers, 50)
            checked = await _time(client, "/api/v1/cheap", headers, requests)
            ratio = statistics.median(checked) / statistics.median(baseline)
            extra = (statistics.median(checked) - statistics.median(baseline)) * 1e3
            print(f"  token checked ({alg})        median {statistics.median(checked) * 1e3:7.3f} ms"
                  f"  ratio {ratio:5.2f}×  (+{extra:.3f} ms per request)")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dx_bench auth", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
