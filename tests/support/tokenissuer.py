"""A small token server for docker-registry's `auth: token`: RS256 JWTs with an x5c chain, per-user grants.

GET /token with optional basic auth, or POST /token with grant_type=refresh_token (identity
tokens). A user gets `pull` on the repositories granted to them; everyone else gets nothing
granted (an empty access list), so the registry refuses with insufficient_scope.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support.pki import KeyPair

ISSUER = "emustore-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenRequest:
    """One request the issuer answered: who asked (None: anonymous), for which scopes, what it granted."""

    method: str
    account: str | None
    scopes: list[str]
    granted: list[dict[str, Any]]
    status: int


@dataclass
class TokenIssuer:
    """Serves /token on a free loopback port; `realm` goes into the registry's auth.token config."""

    signing: KeyPair
    service: str
    users: dict[str, str] = field(default_factory=dict)  # username → password
    grants: dict[str, set[str]] = field(default_factory=dict)  # username → repositories it may pull
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # identity token → username
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                issuer._answer(self, parse_qs(urlsplit(self.path).query), "GET")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                issuer._answer(self, parse_qs(self.rfile.read(length).decode()), "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def registry_config(self) -> dict[str, Any]:
        """The `auth:` section for docker-registry."""
        return {
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": self.service,
                    "issuer": ISSUER,
                    "rootcertbundle": str(self.signing.cert),
                }
            }
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]], method: str) -> None:
        scopes = query.get("scope", [])
        account = self._authenticate(handler, query, method)
        if account is False:
            self._reply(handler, 401, {"details": "incorrect username or password"})
            self.requests.append(TokenRequest(method, None, scopes, [], 401))
            return
        user = account if isinstance(account, str) else None
        granted = [entry for scope in scopes if (entry := self._grant(user, scope)) is not None]
        self.requests.append(TokenRequest(method, user, scopes, granted, 200))
        token = self._jwt(user or "", granted)
        body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": 300}
        self._reply(handler, 200, body)

    def _authenticate(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]], method: str) -> str | bool | None:
        """The username, None when anonymous, False when the credentials are wrong."""
        if method == "POST":
            if query.get("grant_type") != ["refresh_token"]:
                return False
            return self.refresh_tokens.get((query.get("refresh_token") or [""])[0], False)
        header = handler.headers.get("Authorization", "")
        if not header:
            return None
        if not header.startswith("Basic "):
            return False
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return username if self.users.get(username) == password and password else False

    def _grant(self, user: str | None, scope: str) -> dict[str, Any] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or user is None or name not in self.grants.get(user, set()):
            return None
        allowed = [a for a in actions.split(",") if a == "pull"]
        return {"type": "repository", "name": name, "actions": allowed}

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        chain = base64.b64encode(self.signing.certificate.public_bytes(serialization.Encoding.DER)).decode()
        header = {"typ": "JWT", "alg": "RS256", "x5c": [chain]}
        claims = {
            "iss": ISSUER, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": secrets.token_hex(8), "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.signing.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
