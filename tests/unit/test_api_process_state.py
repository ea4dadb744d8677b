"""The Python API leaves the caller's process as it found it: umask, cwd, signal handlers,
environment, open descriptors and threads, on success and on every kind of failure."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import FrameType

import pytest

import emustore
from emustore.errors import EmustoreError
from emustore.load import load, pull_from
from emustore.pull import PullOptions, pull
from emustore.reference import parse_reference
from emustore.save import save_to_path
from tests.support.figures import record
from tests.support.imagefactory import busybox_image
from tests.unit.test_archives import TAG, write_oci_layout

CALLER_UMASK = 0o077  # not the 022 a pull works with: a umask left changed shows


def _caller_handler(signum: int, frame: FrameType | None) -> None:
    """A SIGINT handler of the caller's own."""


def _state() -> dict[str, object]:
    umask = os.umask(0)
    os.umask(umask)
    handlers = {}
    for sig in signal.valid_signals():
        try:
            handlers[sig] = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
    return {
        "umask": umask,
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "handlers": handlers,
        "fds": sorted(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
    }


class _NoImages(BaseHTTPRequestHandler):
    """A registry that has nothing: every request gets 404 (a quick failure, no retries)."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def empty_registry() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _NoImages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.server_port
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def caller() -> Iterator[None]:
    """A caller with its own umask and SIGINT handler."""
    umask = os.umask(CALLER_UMASK)
    handler = signal.signal(signal.SIGINT, _caller_handler)
    yield
    signal.signal(signal.SIGINT, handler)
    os.umask(umask)


def _calls(tmp_path: Path, registry: str) -> dict[str, tuple[Callable[[], object], bool]]:
    """name → (an API call, whether it succeeds)."""
    layout = tmp_path / "layout"
    write_oci_layout(layout, busybox_image("oci"))
    (tmp_path / "file").write_bytes(b"")
    ref = parse_reference("local/state:v1")
    unknown = registry + "/x/y:v1"
    return {
        "pull --from (success)": (lambda: pull_from(f"oci-layout:{layout}", ref, tmp_path / "ok"), True),
        "pull --from again (present)": (lambda: pull_from(f"oci-layout:{layout}", ref, tmp_path / "ok"), True),
        "load (success)": (lambda: list(load(layout, tmp_path / "loaded")), True),
        "load of a stream (success)": (lambda: _load_stream(tmp_path / "saved.tar", tmp_path / "streamed"), True),
        "load of a bad archive": (lambda: list(load(tmp_path / "file", tmp_path / "bad")), False),
        "api pull, unknown image": (lambda: emustore.pull(unknown, tmp_path / "api"), False),
        "Store.pull, unknown image": (lambda: emustore.Store(tmp_path / "store").pull(unknown), False),
        "unusable blob cache": (lambda: pull(unknown, tmp_path / "cache", PullOptions(blob_cache=tmp_path / "file")), False),
        "unusable root": (lambda: pull(unknown, tmp_path / "file"), False),
        "bad platform": (lambda: pull(unknown, tmp_path / "platform", PullOptions(platform="no/such/thing/x")), False),
    }


def test_every_call_leaves_the_process_as_it_found_it(caller: None, empty_registry: str, tmp_path: Path) -> None:
    calls = _calls(tmp_path, empty_registry)
    _saved_stream(tmp_path)
    before = _state()
    failed = 0
    for name, (call, succeeds) in calls.items():
        if succeeds:
            call()
        else:
            with pytest.raises(EmustoreError):
                call()
            failed += 1
        after = _state()
        assert after == before, (name, {k: (before[k], after[k]) for k in before if before[k] != after[k]})
    assert os.umask(CALLER_UMASK) == CALLER_UMASK and signal.getsignal(signal.SIGINT) is _caller_handler
    record("process state after API calls", calls=len(calls), failing_calls=failed, changed=0)


def _saved_stream(tmp_path: Path) -> None:
    """An archive for the stream load: the loaded root saved as a docker archive."""
    list(load(tmp_path / "layout", tmp_path / "for-stream"))
    save_to_path(tmp_path / "for-stream", [TAG], tmp_path / "saved.tar")


def _load_stream(archive: Path, root: Path) -> None:
    with archive.open("rb") as stream:
        list(load(stream, root))
