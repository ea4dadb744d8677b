"""The stall rule on the socket: every read of a connection counts, the response headers included.

httpx's timeouts are per read, so a server sending its headers one byte per read timeout keeps a
request alive for days. A WatchedStream caps each read's timeout at what is left of the current
stall window and fails the read (StalledRead) once the window closes with too few bytes; sending
a request starts a new window. Used as httpcore's network backend (see registry/transport.py).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

from emustore.registry.stall import StallRule, StallWindow


class StalledRead(httpcore.ReadTimeout):
    """A read ended by the stall rule; the message says why (no URL: the transport adds it)."""


class WatchedStream(httpcore.NetworkStream):
    """A network stream whose reads are held to `rule`, waiting timed by `clock`."""

    def __init__(
        self, stream: httpcore.NetworkStream, rule: StallRule, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._window = StallWindow(rule)
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """At most `max_bytes`, within the per-read `timeout`, unless the stall window closes first."""
        while True:
            left = self._window.left()
            capped = timeout is None or left < timeout
            started = self._clock()
            try:
                data = self._stream.read(max_bytes, left if capped else timeout)
            except httpcore.ReadTimeout:
                waited = self._clock() - started
                if not capped:
                    raise
                broken = self._window.count(0, max(waited, left))  # the window is over, whatever the clock says
                if broken is not None:
                    raise StalledRead(broken) from None
                if timeout is not None:
                    timeout -= waited
                    if timeout <= 0:
                        raise
                continue
            waited = self._clock() - started
            if not data:  # the end of the stream ends no window: a finished transfer never fails
                return data
            broken = self._window.count(len(data), waited)
            if broken is not None:
                raise StalledRead(broken)
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send; a request going out starts a new window for its answer."""
        self._window.restart()
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        """The TLS stream, watched in turn; the handshake is bounded as a whole by `timeout` (one deadline in ssl)."""
        secured = self._stream.start_tls(ssl_context, server_hostname, timeout)
        return WatchedStream(secured, self._window.rule, self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class WatchedBackend(httpcore.NetworkBackend):
    """`backend` whose connections are WatchedStreams under `rule`."""

    def __init__(self, backend: httpcore.NetworkBackend, rule: StallRule) -> None:
        self._backend = backend
        self._rule = rule

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return WatchedStream(stream, self._rule)
