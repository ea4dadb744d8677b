"""A fault-injecting HTTP proxy in front of a real registry: cuts, resets, error statuses, slow and wrong bytes.

Faults are queued with `inject`; each applies to the next `times` requests whose path contains
`path`. Every request is recorded (path, Range header, status, body bytes actually sent).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

FaultKind = Literal[
    "cut", "reset", "status", "slow", "corrupt", "body", "stall", "endless", "drip", "drip-headers", "late"
]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
_CHUNK = 16 << 10


@dataclass
class Fault:
    """cut/reset: end the body after `after` bytes (FIN / RST); slow: pause `pause` s after `after` bytes;
    corrupt: flip the byte at `after`; status: answer `status` (with `retry_after`) instead of forwarding;
    body: answer 200 with `body` (as `content_type`) instead of forwarding; stall: send the headers, then
    nothing for `pause` s, then close (a slow loris that never makes progress); endless: answer `status`
    with a body of `body` repeated (zeros if empty) without a length, until the client leaves or `after`
    bytes went out; drip: forward the body one byte every `pause` s, at most `after` bytes;
    drip-headers: answer a status line, then header bytes one every `pause` s, at most `after`, never
    ending the headers, then close; late: forward the answer, its headers `pause` s late.
    `headers` are added to the answers this proxy makes itself (status, body, endless)."""

    path: str
    kind: FaultKind
    after: int = 0
    status: int = 500
    retry_after: str | None = None
    pause: float = 0.0
    times: int = 1
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int
    fault: FaultKind | None
    client_port: int = 0  # the client's end of the connection: equal ports, one kept-alive connection


class FaultProxy:
    """Listens on a free loopback port (`host`) and forwards to `upstream` (host:port, plain HTTP)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                proxy._handle(self)

            def do_HEAD(self) -> None:  # noqa: N802
                proxy._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def requests_for(self, path_part: str) -> list[Seen]:
        """The recorded requests for a path, once every request in flight has been answered."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=30)
            return [s for s in self.seen if path_part in s.path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.path in path:
                    fault.times -= 1
                    return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._active += 1
        try:
            self._forward(h)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        fault = self._take(h.path)
        if fault is not None and fault.kind == "status":
            body = json.dumps({"errors": [{"code": "UNKNOWN", "message": f"injected {fault.status}"}]}).encode()
            h.send_response(fault.status)
            if fault.retry_after is not None:
                h.send_header("Retry-After", fault.retry_after)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            _extra_headers(h, fault)
            h.end_headers()
            h.wfile.write(body)
            self._record(h, fault.status, len(body), fault)
            return
        if fault is not None and fault.kind == "body":
            h.send_response(200)
            h.send_header("Content-Type", fault.content_type)
            h.send_header("Content-Length", str(len(fault.body)))
            _extra_headers(h, fault)
            h.end_headers()
            h.wfile.write(fault.body)
            self._record(h, 200, len(fault.body), fault)
            return
        if fault is not None and fault.kind == "endless":
            self._record(h, fault.status, self._endless(h, fault), fault)
            return
        if fault is not None and fault.kind == "drip-headers":
            self._drip_headers(h, fault)
            self._record(h, 200, 0, fault)
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(h.command, h.path, headers=headers)
            answer = upstream.getresponse()
            body = answer.read() if h.command != "HEAD" else b""
            if fault is not None and fault.kind == "late":
                time.sleep(fault.pause)
            h.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    h.send_header(key, value)
            length = answer.getheader("Content-Length") if h.command == "HEAD" else str(len(body))
            h.send_header("Content-Length", length or "0")
            h.end_headers()
            sent = self._send_body(h, body, fault)
            self._record(h, answer.status, sent, fault)
        finally:
            upstream.close()

    def _endless(self, h: BaseHTTPRequestHandler, fault: Fault) -> int:
        """A body without a length that goes on until the client leaves (or `after` bytes); bytes sent."""
        h.send_response(fault.status)
        h.send_header("Content-Type", fault.content_type)
        h.send_header("Connection", "close")
        _extra_headers(h, fault)
        h.end_headers()
        h.close_connection = True
        h.connection.settimeout(30)  # a client that neither reads nor closes ends this too
        unit = (fault.body or b"\0") * max(1, _CHUNK // max(1, len(fault.body)))
        sent = 0
        while sent < fault.after:
            try:
                h.wfile.write(unit)
            except OSError:  # the client stopped reading and closed
                break
            sent += len(unit)
        return sent

    def _drip_headers(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        """A status line, then a header growing one byte every `pause` s (`after` bytes at most), never ended."""
        h.close_connection = True
        h.connection.settimeout(30)
        raw = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * fault.after
        for i in range(min(fault.after, len(raw))):
            try:
                h.connection.sendall(raw[i : i + 1])
            except OSError:  # the client gave up
                return
            time.sleep(fault.pause)

    def _send_body(self, h: BaseHTTPRequestHandler, body: bytes, fault: Fault | None) -> int:
        """Write the body applying `fault`; the number of body bytes that went out."""
        if fault is not None and fault.kind == "stall":
            h.wfile.flush()
            time.sleep(fault.pause)
            h.close_connection = True
            return 0
        if fault is not None and fault.kind == "drip":
            sent = 0
            for i in range(min(fault.after, len(body))):
                try:
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                except OSError:
                    break
                sent += 1
                time.sleep(fault.pause)
            h.close_connection = True
            return sent
        if fault is not None and fault.kind == "corrupt" and fault.after < len(body):
            body = body[: fault.after] + bytes([body[fault.after] ^ 0xFF]) + body[fault.after + 1 :]
        limit = fault.after if fault is not None and fault.kind in ("cut", "reset") else len(body)
        sent = 0
        for start in range(0, min(limit, len(body)), _CHUNK):
            chunk = body[start : min(start + _CHUNK, limit)]
            try:
                h.wfile.write(chunk)
            except OSError:  # the client gave up (e.g. timed out on a slow body)
                h.close_connection = True
                break
            sent += len(chunk)
            if fault is not None and fault.kind == "slow" and start <= fault.after < start + _CHUNK:
                h.wfile.flush()
                time.sleep(fault.pause)
        if fault is not None and fault.kind in ("cut", "reset") and limit < len(body):
            h.wfile.flush()
            h.close_connection = True
            if fault.kind == "reset":
                time.sleep(0.2)  # let the bytes reach the client before the RST discards buffers
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.connection.close()
            else:
                h.connection.shutdown(socket.SHUT_WR)
        return sent

    def _record(self, h: BaseHTTPRequestHandler, status: int, sent: int, fault: Fault | None) -> None:
        with self._lock:
            self.seen.append(Seen(
                h.command, h.path, h.headers.get("Range"), status, sent, fault.kind if fault else None,
                h.client_address[1],
            ))


def _extra_headers(h: BaseHTTPRequestHandler, fault: Fault) -> None:
    for key, value in (fault.headers or {}).items():
        h.send_header(key, value)
