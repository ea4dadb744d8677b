"""Registry authentication: WWW-Authenticate challenges and bearer tokens cached per scope."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from emustore import safejson
from emustore.errors import RegistryError

_TOKEN_RE = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM_RE = re.compile(rf'\s*({_TOKEN_RE})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN_RE}))\s*(?:,|$)')
_SCHEME_RE = re.compile(rf"\s*,?\s*({_TOKEN_RE})(?:\s+|$)")
_DEFAULT_TOKEN_LIFETIME = 60.0
MAX_TOKEN_RESPONSE = 1 << 20


@dataclass(frozen=True)
class Challenge:
    """One challenge of a WWW-Authenticate header; `scheme` is lowercased, params are unquoted."""

    scheme: str
    params: dict[str, str]


def parse_www_authenticate(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more WWW-Authenticate header values, e.g. `Bearer realm="…",service="…"`."""
    values = [headers] if isinstance(headers, str) else list(headers)
    challenges: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            scheme = _SCHEME_RE.match(value, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            while (param := _PARAM_RE.match(value, pos)) is not None:
                quoted, plain = param.group(2), param.group(3)
                params[param.group(1).lower()] = (
                    re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
                )
                pos = param.end()
            challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def bearer_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The first usable Bearer challenge (one with a realm), if any."""
    return next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)


@dataclass(frozen=True)
class TokenAnswer:
    """What a token server answered: its status, and the body of a 200 (read bounded)."""

    status: int
    reason: str
    body: bytes


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Bearer tokens, cached per (realm, service, scope); safe to share between threads."""

    def __init__(self, get: Callable[[str, dict[str, str]], TokenAnswer]) -> None:
        """`get(url, params)` performs the token request (the registry client's transport)."""
        self._get = get
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = threading.Lock()

    def token(self, challenge: Challenge, scope: str, *, refresh: bool = False) -> str:
        """A token for `scope`, from the cache unless expired or `refresh` is set."""
        realm, service = challenge.params["realm"], challenge.params.get("service", "")
        key = (realm, service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and not refresh and cached.expires_at > time.monotonic():
                return cached.value
            token = self._fetch(realm, service, scope)
            self._tokens[key] = token
            return token.value

    def cached(self, challenge: Challenge, scope: str) -> str | None:
        """The cached, unexpired token for `scope`, or None."""
        key = (challenge.params["realm"], challenge.params.get("service", ""), scope)
        with self._lock:
            cached = self._tokens.get(key)
        return cached.value if cached is not None and cached.expires_at > time.monotonic() else None

    def _fetch(self, realm: str, service: str, scope: str) -> _Token:
        params = {"scope": scope} if scope else {}
        if service:
            params["service"] = service
        started = time.monotonic()
        answer = self._get(realm, params)
        if answer.status != 200:
            raise RegistryError(
                f"getting a registry token from {realm}{f' for {scope}' if scope else ''} failed: "
                f"HTTP {answer.status} {answer.reason}"
            )
        try:
            body = safejson.loads(answer.body)
        except ValueError:
            body = None
        value = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token server {realm} answered without a token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            lifetime = _DEFAULT_TOKEN_LIFETIME
        # Renew a little early so a token does not expire between the check and its use.
        return _Token(value, started + max(float(lifetime) - 5.0, 1.0))
