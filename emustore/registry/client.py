"""Registry HTTP API v2 client (manifests and blobs, pull only) on one pooled httpx.Client."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from emustore.errors import DigestMismatch, ManifestError, NotFound, RegistryError
from emustore.manifest import MANIFEST_ACCEPT
from emustore.reference import Reference
from emustore.registry.auth import Challenge, TokenCache, bearer_challenge, parse_www_authenticate

MAX_MANIFEST_SIZE = 4 << 20
MAX_CONNECTIONS = 16
MAX_REDIRECTS = 10
_MAX_ERROR_BODY = 64 << 10
_DENIED_CODES = ("DENIED", "UNAUTHORIZED")
_NOT_FOUND_CODES = ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN")


def is_default_insecure(host: str) -> bool:
    """Docker's default insecure range: localhost and loopback addresses, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class _Target:
    """What a request is for, to word its errors like docker does."""

    familiar_name: str
    shown: str  # "manifest for NAME:TAG" / "blob sha256:… in NAME"
    is_manifest: bool


class BlobStream:
    """An open blob download; `size` is the announced Content-Length, if any."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response = response
        self._url = url
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None

    def iter_chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body, as it arrives, in chunks of at most `chunk_size` bytes."""
        try:
            yield from self._response.iter_bytes(chunk_size)
        except httpx.TransportError as exc:
            raise _transport_error(exc, self._url) from None


class RegistryClient:
    """A pull client for one registry host; thread-safe (one pooled connection set, shared tokens)."""

    def __init__(
        self,
        host: str,
        *,
        domain: str | None = None,
        insecure: bool | None = None,
        timeout: float = 30.0,
    ) -> None:
        """`domain` is the reference domain used in messages (defaults to `host`)."""
        self.host = host
        self.domain = domain or host
        plain_http = insecure if insecure is not None else is_default_insecure(host)
        self.base_url = f"{'http' if plain_http else 'https'}://{host}"
        self._origin = httpx.URL(self.base_url)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            follow_redirects=False,
            headers={"User-Agent": "emustore"},
        )
        self._tokens = TokenCache(self._token_get)
        self._challenge: Challenge | None = None

    @classmethod
    def for_reference(
        cls, ref: Reference, *, insecure: bool | None = None, timeout: float = 30.0
    ) -> RegistryClient:
        """A client for the registry serving `ref` (registry-1.docker.io for docker.io)."""
        return cls(ref.registry_host, domain=ref.domain, insecure=insecure, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_manifest(
        self, repository: str, reference: str, *, max_size: int = MAX_MANIFEST_SIZE
    ) -> tuple[bytes, str | None, str]:
        """(raw bytes, Content-Type, "sha256:…" of the bytes) for a tag or digest; digests are verified."""
        familiar = self._familiar(repository)
        sep = "@" if reference.startswith("sha256:") else ":"
        shown = f"{familiar}{sep}{reference}"
        target = _Target(familiar, f"manifest for {shown}", is_manifest=True)
        url = f"{self.base_url}/v2/{repository}/manifests/{reference}"
        with self._open(url, repository, {"Accept": ", ".join(MANIFEST_ACCEPT)}, target) as response:
            data = _read_limited(response, url, max_size, f"manifest for {shown}")
            content_type = response.headers.get("content-type")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if sep == "@" and digest != reference:
            raise DigestMismatch(
                f"manifest {reference} of {familiar} does not match its digest: the registry sent "
                f"content with digest {digest}"
            )
        return data, content_type, digest

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BlobStream]:
        """Stream a blob (redirects followed); the caller verifies the digest while reading."""
        familiar = self._familiar(repository)
        target = _Target(familiar, f"blob {digest} in {familiar}", is_manifest=False)
        url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        with self._open(url, repository, {"Accept-Encoding": "identity"}, target) as response:
            yield BlobStream(response, str(response.url))

    def fetch_blob(self, repository: str, digest: str, max_size: int) -> bytes:
        """A whole small blob (e.g. a config), verified against `digest`, refused past `max_size` bytes."""
        what = f"blob {digest} of {self._familiar(repository)}"
        with self.open_blob(repository, digest) as blob:
            if blob.size is not None and blob.size > max_size:
                raise ManifestError(_too_large(what, max_size))
            data = bytearray()
            for chunk in blob.iter_chunks(64 << 10):
                data += chunk
                if len(data) > max_size:
                    raise ManifestError(_too_large(what, max_size))
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(f"{what} does not match its digest: the registry sent content with digest {actual}")
        return bytes(data)

    # -- transport ---------------------------------------------------------------------------

    def _familiar(self, repository: str) -> str:
        return Reference(self.domain, repository).familiar_name

    @contextlib.contextmanager
    def _open(self, url: str, repository: str, headers: dict[str, str], target: _Target) -> Iterator[httpx.Response]:
        """GET `url` streamed: authenticate, follow redirects, map error statuses; closes the response."""
        response = self._send_authenticated(url, repository, headers)
        try:
            for _ in range(MAX_REDIRECTS):
                if not response.is_redirect:
                    break
                next_url = response.url.join(response.headers["location"])
                response.close()
                hop_headers = dict(headers)
                if _origin(next_url) == _origin(self._origin):
                    hop_headers.update(self._auth_header(repository))
                response = self._send(next_url, hop_headers)
            else:
                raise RegistryError(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')
            if response.status_code != 200:
                raise _status_error(response, target)
            yield response
        finally:
            response.close()

    def _send_authenticated(self, url: str, repository: str, headers: dict[str, str]) -> httpx.Response:
        """Send with the cached token if any; on a 401 get a (fresh) token and try once more."""
        auth = self._auth_header(repository)
        response = self._send(url, headers | auth)
        if response.status_code != 401:
            return response
        challenge = bearer_challenge(parse_www_authenticate(response.headers.get_list("www-authenticate")))
        if challenge is None:
            return response
        response.close()
        self._challenge = challenge
        token = self._tokens.token(challenge, _scope(repository), refresh=bool(auth))
        return self._send(url, headers | {"Authorization": f"Bearer {token}"})

    def _auth_header(self, repository: str) -> dict[str, str]:
        challenge = self._challenge
        token = self._tokens.cached(challenge, _scope(repository)) if challenge is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _send(self, url: str | httpx.URL, headers: dict[str, str]) -> httpx.Response:
        """The one place a registry request goes out (retries belong here)."""
        request = self._http.build_request("GET", url, headers=headers)
        try:
            return self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _transport_error(exc, str(url)) from None

    def _token_get(self, realm: str, params: dict[str, str]) -> httpx.Response:
        try:
            return self._http.get(realm, params=params, follow_redirects=True)
        except httpx.TransportError as exc:
            raise _transport_error(exc, realm) from None


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _too_large(what: str, limit: int) -> str:
    return f"{what} is larger than the {limit}-byte limit; refusing it"


def _read_limited(response: httpx.Response, url: str, limit: int, what: str) -> bytes:
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ManifestError(_too_large(what, limit))
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > limit:
                raise ManifestError(_too_large(what, limit))
    except httpx.TransportError as exc:
        raise _transport_error(exc, url) from None
    return bytes(data)


def _registry_error(response: httpx.Response) -> tuple[str, str] | None:
    """(code, "code words: message") of the first error in a registry error body, if it has one."""
    try:
        body = json.loads(_read_limited(response, str(response.url), _MAX_ERROR_BODY, "error body"))
    except (ValueError, ManifestError, RegistryError):
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
    if first is None or not isinstance(first.get("code"), str):
        return None
    code, message = first["code"], first.get("message")
    words = code.lower().replace("_", " ")
    return code, _one_line(f"{words}: {message}" if isinstance(message, str) and message else words)


def _status_error(response: httpx.Response, target: _Target) -> RegistryError:
    """The error for a non-200 answer, worded like docker's pull errors."""
    status = response.status_code
    parsed = _registry_error(response)
    code, cause = parsed if parsed is not None else ("", f"HTTP {status} {response.reason_phrase}")
    if status in (401, 403) or code in _DENIED_CODES:
        if parsed is None:
            cause = "denied: requested access to the resource is denied"
        return NotFound(
            f"pull access denied for {target.familiar_name}, repository does not exist or may require "
            f"'emustore login': {cause}"
        )
    if code == "NAME_UNKNOWN":
        return NotFound(f"repository {target.familiar_name} not found: {cause}")
    if status == 404 or code in _NOT_FOUND_CODES:
        if parsed is None:
            cause = "manifest unknown" if target.is_manifest else "blob unknown"
        return NotFound(f"{target.shown} not found: {cause}")
    return RegistryError(
        f'Get "{response.request.url}": registry answered HTTP {status} {response.reason_phrase}'
        + (f": {cause}" if parsed is not None else "")
    )


def _transport_error(exc: httpx.TransportError, url: str) -> RegistryError:
    """A one-line error for a failure below HTTP (refused, unreachable, TLS, timeout, cut off)."""
    if isinstance(exc, httpx.TimeoutException):
        return RegistryError(f'Get "{url}": timed out ({type(exc).__name__})')
    detail = str(exc) or type(exc).__name__
    if detail.startswith("[Errno"):
        detail = detail.split("]", 1)[-1].strip()
    if isinstance(exc, httpx.ConnectError):
        host = httpx.URL(url).netloc.decode("ascii", "replace")
        return RegistryError(f'Get "{url}": cannot connect to {host}: {_one_line(detail).lower()}')
    return RegistryError(f'Get "{url}": {_one_line(detail)}')


def _one_line(text: str) -> str:
    return " ".join(text.split())
