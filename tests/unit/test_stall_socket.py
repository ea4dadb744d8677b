"""The stall rule on a socket (registry/stallsocket.py), on a simulated clock: each read's timeout is
capped at what is left of the window, a window with too few bytes fails the read, a request sent
starts a new window, and the per-read timeout still applies on its own.
"""

from __future__ import annotations

import httpcore
import httpx
import pytest

from emustore.registry.stall import StallRule
from emustore.registry.stallsocket import StalledRead, WatchedStream
from emustore.registry.transport import StallTransport, stall_transport
from tests.support.figures import record


class _Peer(httpcore.NetworkStream):
    """A server on a simulated clock: `arrivals` are (time, bytes) in order; a read waits at most its timeout."""

    def __init__(self, arrivals: list[tuple[float, bytes]]) -> None:
        self.now = 0.0
        self.arrivals = arrivals
        self.timeouts: list[float | None] = []
        self.sent: list[bytes] = []

    def clock(self) -> float:
        return self.now

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        due, data = self.arrivals[0] if self.arrivals else (float("inf"), b"")
        if timeout is not None and due - self.now > timeout:
            self.now += timeout
            raise httpcore.ReadTimeout("timed out")
        self.now = max(self.now, due)
        self.arrivals.pop(0)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.sent.append(buffer)


def _watched(peer: _Peer, rule: StallRule) -> WatchedStream:
    return WatchedStream(peer, rule, peer.clock)


def test_trickled_headers_end_when_the_window_closes() -> None:
    """One header byte every 20 s, each inside the 30 s read timeout: 60 s of waiting, then the read fails."""
    peer = _Peer([(20.0 * (i + 1), b"H") for i in range(5000)])
    stream = _watched(peer, StallRule(65536, 60.0))
    stream.write(b"GET /v2/ HTTP/1.1\r\n\r\n")
    received = b""
    with pytest.raises(StalledRead) as info:
        while True:
            received += stream.read(65536, timeout=30.0)
    message = str(info.value)
    assert message == "transfer stalled: 3 bytes in 60.0s, less than the stall limit of 65536 bytes per 60s"
    assert received == b"HH" and peer.now == 60.0
    assert peer.timeouts == [30.0, 30.0, 20.0]  # the last read may wait only what is left of the window
    record("socket stall, trickled headers", bytes=3, simulated_seconds=int(peer.now), reads=len(peer.timeouts))


def test_a_silent_server_fails_at_the_window_not_the_read_timeout() -> None:
    peer = _Peer([])
    stream = _watched(peer, StallRule(1024, 20.0))
    with pytest.raises(StalledRead, match=r"0 bytes in 20\.0s"):
        stream.read(65536, timeout=30.0)
    assert peer.now == 20.0


def test_the_read_timeout_still_comes_first_when_shorter() -> None:
    peer = _Peer([])
    stream = _watched(peer, StallRule(1024, 60.0))
    with pytest.raises(httpcore.ReadTimeout) as info:
        stream.read(65536, timeout=30.0)
    assert not isinstance(info.value, StalledRead) and peer.now == 30.0


def test_each_request_sent_starts_a_new_window() -> None:
    """Two answers on one kept-alive connection, each 40 s late: neither reaches a 60 s window."""
    peer = _Peer([(40.0, b"HTTP/1.1 200 OK\r\n\r\n"), (80.0, b"HTTP/1.1 200 OK\r\n\r\n")])
    stream = _watched(peer, StallRule(1024, 60.0))
    for _ in range(2):
        stream.write(b"GET /v2/ HTTP/1.1\r\n\r\n")
        assert stream.read(65536, timeout=None) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert peer.now == 80.0 and len(peer.sent) == 2

    unbroken = _Peer([(40.0, b"HTTP/1.1 200 OK\r\n\r\n"), (80.0, b"HTTP/1.1 200 OK\r\n\r\n")])
    stream = _watched(unbroken, StallRule(1024, 60.0))
    stream.write(b"GET /v2/ HTTP/1.1\r\n\r\n")
    stream.read(65536, timeout=None)
    with pytest.raises(StalledRead, match=r"19 bytes in 60\.0s"):  # no new request: the window goes on
        stream.read(65536, timeout=None)


def test_a_kept_window_restarts_and_the_read_goes_on() -> None:
    """100 bytes in the first 5 s window keep it; the read then waits on, within its own timeout."""
    peer = _Peer([(1.0, b"x" * 100), (7.0, b"y")])
    stream = _watched(peer, StallRule(10, 5.0))
    assert stream.read(65536, timeout=30.0) == b"x" * 100
    assert stream.read(65536, timeout=30.0) == b"y"
    assert peer.now == 7.0 and peer.timeouts == [5.0, 4.0, 5.0]

    silent_after = _Peer([(1.0, b"x" * 100)])
    stream = _watched(silent_after, StallRule(10, 5.0))
    stream.read(65536, timeout=30.0)
    with pytest.raises(StalledRead, match=r"0 bytes in 5\.0s"):
        stream.read(65536, timeout=30.0)
    assert silent_after.now == 10.0


def test_steady_transfers_and_the_end_of_the_stream_pass() -> None:
    peer = _Peer([(0.01 * (i + 1), b"x" * 1024) for i in range(10_000)] + [(100.5, b"")])
    stream = _watched(peer, StallRule(65536, 60.0))
    received = 0
    while data := stream.read(65536, timeout=30.0):
        received += len(data)
    assert received == 10_000 * 1024 and peer.now == 100.5


def test_with_the_rule_off_or_a_proxy_the_client_keeps_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's transport (the body rule only) when the rule is off, or to keep honouring an environment proxy."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    limits = httpx.Limits(max_connections=2)
    assert stall_transport(None, True, limits) is None
    assert isinstance(stall_transport(StallRule(1, 0.5), True, limits), StallTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert stall_transport(StallRule(1, 0.5), True, limits) is None
