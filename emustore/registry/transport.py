"""An httpx transport whose sockets are read under the stall rule, so a response's headers are covered too.

httpx.HTTPTransport cannot be given a network backend; httpcore.ConnectionPool can. This transport
speaks HTTP/1.1 through such a pool (TLS, limits and keep-alive as httpx would set them) and turns
httpcore's errors into httpx's, and a stalled read into emustore's TransferStalled (never retried).
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.request
from collections.abc import Iterator

import httpcore
import httpx

from emustore.registry.stall import StallRule, stalled
from emustore.registry.stallsocket import StalledRead, WatchedBackend

# httpcore error → the httpx error it becomes; subclasses before their bases
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def stall_transport(rule: StallRule | None, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> StallTransport | None:
    """The transport for a client under `rule`; None (httpx's own, bodies still under the rule) when the
    rule is off or the environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), which httpx honours."""
    return StallTransport(rule, verify, limits) if rule is not None and not _proxied() else None


def _proxied() -> bool:
    found = urllib.request.getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))


class StallTransport(httpx.BaseTransport):
    """HTTP/1.1 over one pooled connection set whose every read, headers included, is held to `rule`."""

    def __init__(self, rule: StallRule, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=WatchedBackend(httpcore.SyncBackend(), rule),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("StallTransport sends synchronous requests only")
        url = request.url
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            answer = self._pool.handle_request(sent)
        return httpx.Response(
            answer.status, headers=answer.headers, stream=_Body(answer, request), extensions=answer.extensions
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    """A response body from the pool, its errors turned into httpx's (or TransferStalled)."""

    def __init__(self, answer: httpcore.Response, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors(self._request):
            yield from self._answer.iter_stream()

    def close(self) -> None:
        self._answer.close()


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise httpcore's errors as httpx's (the cause kept, for TLS detection), stalls as TransferStalled."""
    try:
        yield
    except StalledRead as exc:
        raise stalled(request.method, str(request.url), str(exc)) from None
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc), request=request) from exc
        raise
