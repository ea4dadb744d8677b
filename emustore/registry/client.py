"""Registry HTTP API v2 client (manifests and blobs, pull only) on one pooled httpx.Client."""

from __future__ import annotations

import base64
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from emustore import safejson
from emustore.digest import Digest
from emustore.errors import DigestMismatch, EmustoreError, ManifestError, NotFound, RegistryError
from emustore.manifest import MANIFEST_ACCEPT
from emustore.reference import Reference
from emustore.registry.auth import (
    MAX_TOKEN_RESPONSE, Challenge, TokenAnswer, TokenCache, bearer_challenge, parse_www_authenticate,
)
from emustore.registry.credentials import Credentials
from emustore.registry.options import DEFAULT_INSECURE, RegistryOptions
from emustore.registry.retry import RETRY_STATUSES, RetryClock, RetryPolicy, parse_retry_after
from emustore.registry.stall import StallRule, watched
from emustore.registry.tls import ssl_context
from emustore.registry.transport import stall_transport

MAX_MANIFEST_SIZE = 4 << 20
MAX_CONNECTIONS = 16
MAX_REDIRECTS = 10
_MAX_ERROR_BODY = 64 << 10
_DENIED_CODES = ("DENIED", "UNAUTHORIZED")
_NOT_FOUND_CODES = ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN")
_log = logging.getLogger(__name__)

CredentialSource = Credentials | Callable[[], Credentials | None] | None


class RegistryUnreachable(RegistryError):
    """No HTTP answer at all: refused, unreachable, TLS failure, timeout, connection cut."""


class TLSFailure(RegistryUnreachable):
    """The TLS handshake failed (certificate, protocol): trying again cannot help."""


def is_default_insecure(host: str) -> bool:
    """Docker's default insecure range: localhost and loopback addresses, with or without a port."""
    return RegistryOptions(insecure_registries=DEFAULT_INSECURE).is_insecure(host)


@dataclass(frozen=True)
class _Target:
    """What a request is for, to word its errors like docker does."""

    familiar_name: str
    shown: str  # "manifest for NAME:TAG" / "blob sha256:… in NAME"
    is_manifest: bool


class BlobStream:
    """An open blob download that resumes where it broke off; `size` is the announced Content-Length.

    The bytes are passed on as they came (a Content-Encoding, never asked for, is not decoded:
    the digest check refuses such a blob), under the stall rule across reconnections."""

    file_reads = False

    def __init__(
        self,
        response: httpx.Response,
        url: str,
        resume: Callable[[int], httpx.Response] | None = None,
        retry: RetryPolicy | None = None,
        stall: StallRule | None = None,
    ) -> None:
        """`resume(offset)` reopens the blob from byte `offset` (a Range request), if resuming is allowed."""
        self._response = response
        self._url = url
        self._resume = resume
        self._retry = retry or RetryPolicy()
        self._stall = stall
        self._resumed: list[httpx.Response] = []
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None

    def iter_chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The whole body as one stream, across reconnections, in the chunks the connection gives
        (not copied; split if longer than `chunk_size`)."""
        return watched(self._resumed_chunks(chunk_size), self._stall, self._url)

    def _resumed_chunks(self, chunk_size: int) -> Iterator[bytes]:
        response, received, skip = self._response, 0, 0
        clock, progress_at_failure = RetryClock(self._retry), 0
        while True:
            try:
                for data in response.iter_raw():
                    if skip:  # a server that ignored the Range header resends the start: drop it
                        dropped = min(skip, len(data))
                        data, skip = data[dropped:], skip - dropped
                    received += len(data)
                    if len(data) <= chunk_size:
                        if data:
                            yield data
                        continue
                    for start in range(0, len(data), chunk_size):
                        yield data[start : start + chunk_size]
                return
            except httpx.TransportError as exc:
                if self._resume is None or (self.size is not None and received >= self.size):
                    raise _transport_error(exc, self._url) from None
                if received > progress_at_failure:  # a new failure after progress starts a new count
                    clock, progress_at_failure = RetryClock(self._retry), received
                delay = clock.next_delay()
                if delay is None:
                    raise _transport_error(exc, self._url) from None
                _log.info("download of %s broke off after %d bytes (%s); resuming", self._url, received, exc)
            time.sleep(delay)
            response = self._resume(received)
            self._resumed.append(response)
            skip = received if response.status_code == 200 else 0

    def close(self) -> None:
        """Close the reconnections (the first response belongs to whoever opened it)."""
        for response in self._resumed:
            response.close()
        self._resumed.clear()


class RegistryClient:
    """A pull client for one registry endpoint; thread-safe (one pooled connection set, shared tokens)."""

    def __init__(
        self,
        host: str,
        *,
        domain: str | None = None,
        insecure: bool | None = None,
        timeout: float = 30.0,
        scheme: str | None = None,
        verify: ssl.SSLContext | bool | None = None,
        credentials: CredentialSource = None,
        retry: RetryPolicy | None = None,
        stall: StallRule | None = StallRule(),
    ) -> None:
        """`domain` is the reference domain used in messages (defaults to `host`).

        Without `scheme`, loopback hosts (or `insecure=True`) get plain HTTP, others HTTPS verified
        against the system roots plus /etc/docker/certs.d/<host>. `credentials` may be a callable,
        asked once, on the first challenge. Every read from the network, a response's headers
        included, is under the `stall` rule (None: off).
        """
        self.host = host
        self.domain = domain or host
        if scheme is None:
            plain_http = insecure if insecure is not None else is_default_insecure(host)
            scheme = "http" if plain_http else "https"
        self.base_url = f"{scheme}://{host}"
        self._origin = httpx.URL(self.base_url)
        self._retry = retry or RetryPolicy()
        self._stall = stall
        verify = verify if verify is not None else (ssl_context(host) if scheme == "https" else True)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=limits,
            follow_redirects=False,
            headers={"User-Agent": "emustore", "Accept-Encoding": "identity"},  # bodies are never decoded
            verify=verify,
            transport=stall_transport(stall, verify, limits),  # every read under the rule, headers included
        )
        self._tokens = TokenCache(self._token_get)
        self._challenge: Challenge | None = None
        self._basic = False
        self._credential_source = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._credentials_lock = threading.Lock()

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
            data = _read_limited(response, url, max_size, f"manifest for {shown}", self._stall)
            content_type = response.headers.get("content-type")
        digest = Digest.of_bytes(data)
        if sep == "@" and digest != reference:
            raise DigestMismatch(
                f"manifest {reference} of {familiar} does not match its digest: the registry sent "
                f"content with digest {digest}"
            )
        return data, content_type, digest

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BlobStream]:
        """Stream a blob (redirects followed, broken downloads resumed); the caller verifies the digest."""
        familiar = self._familiar(repository)
        target = _Target(familiar, f"blob {digest} in {familiar}", is_manifest=False)
        url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        headers: dict[str, str] = {}

        def resume(offset: int) -> httpx.Response:
            return self._request(url, repository, headers | {"Range": f"bytes={offset}-"}, target, offset)

        with self._open(url, repository, headers, target) as response:
            blob = BlobStream(response, str(response.url), resume, self._retry, self._stall)
            try:
                yield blob
            finally:
                blob.close()

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
        actual = Digest.of_bytes(data)
        if actual != digest:
            raise DigestMismatch(f"{what} does not match its digest: the registry sent content with digest {actual}")
        return bytes(data)

    def check_login(self) -> None:
        """GET /v2/ with the credentials, as `docker login` does; raises unless the registry accepts them."""
        url = f"{self.base_url}/v2/"
        response = self._send_authenticated(url, "", {})
        try:
            if response.status_code != 200:
                raise RegistryError(
                    f"login attempt to {url} failed with status: {response.status_code} {response.reason_phrase}"
                )
        finally:
            response.close()

    # -- transport ---------------------------------------------------------------------------

    def _familiar(self, repository: str) -> str:
        return Reference(self.domain, repository).familiar_name

    @contextlib.contextmanager
    def _open(self, url: str, repository: str, headers: dict[str, str], target: _Target) -> Iterator[httpx.Response]:
        """`_request` as a context manager that closes the response."""
        response = self._request(url, repository, headers, target)
        try:
            yield response
        finally:
            response.close()

    def _request(
        self, url: str, repository: str, headers: dict[str, str], target: _Target, offset: int | None = None
    ) -> httpx.Response:
        """GET `url` streamed: authenticate, follow redirects, map error statuses (206 from `offset` is ok)."""

        def hop(next_url: httpx.URL, status: int) -> httpx.Request:
            auth = self._auth_header(repository) if _origin(next_url) == _origin(self._origin) else {}
            return self._http.build_request("GET", next_url, headers=headers | auth)

        response = self._follow(self._send_authenticated(url, repository, headers), url, hop)
        try:
            if offset is not None and response.status_code == 206:
                _check_content_range(response, offset)
            elif response.status_code != 200:
                raise _status_error(response, target, self._stall)
        except BaseException:
            response.close()
            raise
        return response

    def _follow(
        self, response: httpx.Response, shown: str, hop: Callable[[httpx.URL, int], httpx.Request]
    ) -> httpx.Response:
        """Follow up to MAX_REDIRECTS redirects without reading their bodies; `hop(url, status)`
        is the request for the next location."""
        try:
            for _ in range(MAX_REDIRECTS):
                if not response.is_redirect:
                    return response
                status = response.status_code
                try:
                    next_url = response.url.join(response.headers["location"])
                except (httpx.InvalidURL, ValueError):
                    raise RegistryError(f'Get "{shown}": redirected to an invalid location') from None
                response.close()
                response = self._send_retrying(lambda: hop(next_url, status), str(next_url))
        except BaseException:
            response.close()
            raise
        response.close()
        raise RegistryError(f'Get "{shown}": stopped after {MAX_REDIRECTS} redirects')

    def _send_authenticated(self, url: str, repository: str, headers: dict[str, str]) -> httpx.Response:
        """Send with the cached authorization if any; on a 401 answer the challenge and try once more."""
        auth = self._auth_header(repository)
        response = self._send(url, headers | auth)
        if response.status_code != 401:
            return response
        challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
        challenge = bearer_challenge(challenges)
        if challenge is not None:
            response.close()
            self._challenge = challenge
            token = self._tokens.token(challenge, _scope(repository), refresh=bool(auth))
            return self._send(url, headers | {"Authorization": f"Bearer {token}"})
        credentials = self._credentials_now()
        if any(c.scheme == "basic" for c in challenges) and not auth and credentials and credentials.username:
            response.close()
            self._basic = True
            return self._send(url, headers | _basic_header(credentials))
        return response

    def _auth_header(self, repository: str) -> dict[str, str]:
        if self._basic:
            credentials = self._credentials_now()
            return _basic_header(credentials) if credentials is not None else {}
        challenge = self._challenge
        token = self._tokens.cached(challenge, _scope(repository)) if challenge is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _credentials_now(self) -> Credentials | None:
        with self._credentials_lock:
            if not self._credentials_loaded:
                source = self._credential_source
                self._credentials = source() if callable(source) else source
                self._credentials_loaded = True
            return self._credentials

    def _send(self, url: str | httpx.URL, headers: dict[str, str]) -> httpx.Response:
        """One registry GET, streamed, retried on connection errors, 5xx and 429."""
        return self._send_retrying(lambda: self._http.build_request("GET", url, headers=headers), str(url))

    def _send_retrying(self, build: Callable[[], httpx.Request], shown: str) -> httpx.Response:
        """The one place requests go out: bounded retries with backoff and jitter, Retry-After honoured."""
        clock = RetryClock(self._retry)
        while True:
            try:
                response = self._http.send(build(), stream=True, follow_redirects=False)
            except httpx.TransportError as exc:
                error = _transport_error(exc, shown)
                delay = None if isinstance(error, TLSFailure) else clock.next_delay()
                if delay is None:
                    raise error from None
                _log.info("%s; retrying in %.1fs", error, delay)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                delay = clock.next_delay(parse_retry_after(response.headers.get("retry-after")))
                if delay is None:
                    return response
                response.close()
                _log.info('Get "%s": HTTP %d; retrying in %.1fs', shown, response.status_code, delay)
            time.sleep(delay)

    def _token_get(self, realm: str, params: dict[str, str]) -> TokenAnswer:
        """A token request: OAuth2 refresh-token POST with an identity token, else GET (basic auth if any).
        Redirects are followed (a POST turns into a GET but on 307 and 308); the answer is read bounded."""
        credentials = self._credentials_now()
        form: dict[str, str] | None = None
        headers: dict[str, str] = {}
        if credentials is not None and credentials.identity_token:
            form = params | {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "client_id": "emustore",
            }
        elif credentials is not None and credentials.username:
            params = params | {"account": credentials.username}
            headers = _basic_header(credentials)
        origin = _origin(httpx.URL(realm))

        def hop(url: httpx.URL, status: int) -> httpx.Request:
            sent = headers if _origin(url) == origin else {}
            if form is not None and status in (307, 308):
                return self._http.build_request("POST", url, data=form)
            return self._http.build_request("GET", url, headers=sent)

        first = (
            (lambda: self._http.build_request("POST", realm, data=form)) if form is not None
            else (lambda: self._http.build_request("GET", realm, params=params, headers=headers))
        )
        response = self._follow(self._send_retrying(first, realm), realm, hop)
        try:
            if response.status_code != 200:  # the body of a refusal is not needed
                return TokenAnswer(response.status_code, response.reason_phrase, b"")
            body = _read_limited(
                response, realm, MAX_TOKEN_RESPONSE, f"token answer of {realm}", self._stall, RegistryError
            )
            return TokenAnswer(200, response.reason_phrase, body)
        finally:
            response.close()


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull" if repository else ""


def _basic_header(credentials: Credentials) -> dict[str, str]:
    pair = f"{credentials.username}:{credentials.password}".encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def _check_content_range(response: httpx.Response, offset: int) -> None:
    """A 206 must continue exactly at `offset`."""
    content_range = response.headers.get("content-range", "")
    if not content_range.startswith(f"bytes {offset}-"):
        response.close()
        raise RegistryError(
            f'Get "{response.request.url}": asked for bytes from {offset}, got range {content_range or "none"}'
        )


def _is_tls_failure(exc: BaseException) -> bool:
    """Whether a transport error came from TLS (certificates, protocol): trying again cannot help."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _too_large(what: str, limit: int) -> str:
    return f"{what} is larger than the {limit}-byte limit; refusing it"


def _read_limited(
    response: httpx.Response,
    url: str,
    limit: int,
    what: str,
    stall: StallRule | None,
    error: type[EmustoreError] = ManifestError,
) -> bytes:
    """A whole body of at most `limit` bytes, as sent (no Content-Encoding is decoded, none is
    accepted), read under the stall rule; refused as soon as it is longer, not once all of it came."""
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise error(_too_large(what, limit))
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise error(f"{what} came with Content-Encoding {_one_line(encoding)!r}, which was not asked for; refusing it")
    data = bytearray()
    try:
        for chunk in watched(response.iter_raw(), stall, url):
            data += chunk
            if len(data) > limit:
                raise error(_too_large(what, limit))
    except httpx.TransportError as exc:
        raise _transport_error(exc, url) from None
    return bytes(data)


def _registry_error(response: httpx.Response, stall: StallRule | None) -> tuple[str, str] | None:
    """(code, "code words: message") of the first error in a registry error body, if it has one."""
    try:
        body = safejson.loads(_read_limited(response, str(response.url), _MAX_ERROR_BODY, "error body", stall))
    except (ValueError, ManifestError, RegistryError):
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
    if first is None or not isinstance(first.get("code"), str):
        return None
    code, message = first["code"], first.get("message")
    words = code.lower().replace("_", " ")
    return code, _one_line(f"{words}: {message}" if isinstance(message, str) and message else words)


def _status_error(response: httpx.Response, target: _Target, stall: StallRule | None) -> RegistryError:
    """The error for a non-200 answer, worded like docker's pull errors."""
    status = response.status_code
    parsed = _registry_error(response, stall)
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


def _transport_error(exc: httpx.TransportError, url: str) -> RegistryUnreachable:
    """A one-line error for a failure below HTTP (refused, unreachable, TLS, timeout, cut off)."""
    if isinstance(exc, httpx.TimeoutException):
        return RegistryUnreachable(f'Get "{url}": timed out ({type(exc).__name__})')
    detail = str(exc) or type(exc).__name__
    if detail.startswith("[Errno"):
        detail = detail.split("]", 1)[-1].strip()
    if isinstance(exc, httpx.ConnectError):
        host = httpx.URL(url).netloc.decode("ascii", "replace")
        kind = TLSFailure if _is_tls_failure(exc) else RegistryUnreachable
        return kind(f'Get "{url}": cannot connect to {host}: {_one_line(detail).lower()}')
    return RegistryUnreachable(f'Get "{url}": {_one_line(detail)}')


def _one_line(text: str) -> str:
    return " ".join(text.split())
