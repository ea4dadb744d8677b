"""A fault-injecting HTTP proxy in front of a test registry, on a free loopback port.

Each request is forwarded to the registry unless `rule(method, path)` returns a Fault for it:
an error status, a connection reset (before or in the middle of the body), a stall after some
body bytes (a slow loris), a body trickled slowly, or canned bytes served instead.
"""

from __future__ import annotations

import http.client
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.tarlayer import BLOCK, Header


@dataclass(frozen=True)
class Fault:
    """What to do instead of a plain forward; `kind` is status, reset, stall, trickle or body."""

    kind: str
    status: int = 503
    after: int = 0  # body bytes sent before a reset or stall
    seconds: float = 0.0  # stall length, or trickle delay per chunk
    chunk: int = 4096  # trickle chunk size
    body: bytes = b""
    content_type: str = "application/json"


Rule = Callable[[str, str], Fault | None]


class FaultProxy:
    """`FaultProxy(upstream_host, rule)`: `.host` is where to pull from; `.faults` counts injections."""

    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        self.upstream = upstream
        self.rule: Rule = rule or (lambda method, path: None)
        self.faults = 0
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_HEAD(self) -> None:
                proxy._handle(self, "HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # resets are the point
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.requests += 1
        fault = self.rule(method, handler.path)
        if fault is not None:
            with self._lock:
                self.faults += 1
        if fault is not None and fault.kind == "status":
            return _send(handler, fault.status, {"Content-Type": "text/plain"}, b"injected fault\n")
        if fault is not None and fault.kind == "body":
            return _send(handler, 200, {"Content-Type": fault.content_type}, fault.body)
        if fault is not None and fault.kind == "reset" and fault.after == 0:
            return _reset(handler)
        status, headers, body = self._forward(handler, method)
        if fault is None or method == "HEAD":
            return _send(handler, status, headers, body if method == "GET" else b"", len(body))
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if fault.kind == "trickle":
            for start in range(0, len(body), fault.chunk):
                handler.wfile.write(body[start : start + fault.chunk])
                handler.wfile.flush()
                time.sleep(fault.seconds)
            return
        handler.wfile.write(body[: fault.after])
        handler.wfile.flush()
        if fault.kind == "stall":
            time.sleep(fault.seconds)
            handler.close_connection = True
            return
        _reset(handler)

    def _forward(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            wanted = ("Accept", "Authorization", "Range")
            conn.request(method, handler.path, headers={k: v for k, v in handler.headers.items() if k in wanted})
            response = conn.getresponse()
            body = response.read()
            keep = ("Content-Type", "Content-Range", "Accept-Ranges", "Docker-Content-Digest", "Location", "WWW-Authenticate")
            headers = {k: v for k, v in response.getheaders() if k in keep}
            return response.status, headers, body
        finally:
            conn.close()


def _send(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, length: int | None = None) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP RST (SO_LINGER 0) instead of a clean FIN."""
    handler.wfile.flush()
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


def pull_process(reference: str, root: str, *extra: str, **popen: object) -> "subprocess.Popen[str]":
    """`python -m emustore pull REFERENCE --root ROOT EXTRA…` started, output captured as text."""
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "emustore", "pull", reference, "--root", root, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def gzip_bomb(size: int) -> bytes:
    """A gzip layer: one file of `size` zero bytes (about 1000:1), built without holding it."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(Header(b"bomb", size=size).encode())]
    zeros = bytes(1 << 20)
    for _ in range(size // len(zeros)):
        out.append(z.compress(zeros))
    out.append(z.compress(bytes(2 * BLOCK)))
    out.append(z.flush())
    return b"".join(out)
