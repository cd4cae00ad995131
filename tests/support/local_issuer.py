"""A throw-away token issuer: keys minted here, discovery and JWKS served on a free port.

Not the project's identity provider (that is `tests/support/idp.py`): this one signs whatever a test asks,
so it is used for what a real provider will not produce — a token from an issuer the services do not trust,
a token for another audience, a key rotation — and to test the verifier itself.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.support.system import free_port


class LocalIssuer:
    def __init__(self, audience: str = "dx-talent") -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.audience = audience
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": f"local-{self.port}", "use": "sig"})]
        self.jwks_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def jwks(self) -> dict[str, Any]:
        return dict(KeySet(list(self.keys)).as_dict(private=False))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    body = issuer.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def token(self, *, alg: str = "RS256", key: RSAKey | None = None, ttl: int = 300, **claims: Any) -> str:
        signing_key = key or self.keys[0]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "local-subject",
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode({"alg": alg, "kid": signing_key.kid}, body, signing_key, algorithms=[alg])


class LocalProvider(LocalIssuer):
    """The `tests.support.identity.Provider` interface over a LocalIssuer: tokens shaped like the test
    identity provider's (role, department and staff id claims; scopes), signed here without a sign-in."""

    def user_token(
        self,
        role: str,
        department: str | None = None,
        staff_id: str | None = None,
        scopes: Any = (),
    ) -> str:
        subject = f"{role}-{department or staff_id or 'person'}"
        return self.token(
            sub=subject, dx_role=role, dx_department=department, dx_staff_id=staff_id, scope=" ".join(scopes)
        )

    def client_token(self, client_id: str, secret: str, scopes: Any) -> str:
        return self.token(sub=client_id, client_id=client_id, azp=client_id, dx_role="dx_office", scope=" ".join(scopes))
