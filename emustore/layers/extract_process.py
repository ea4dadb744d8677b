"""A layer's extraction in a forked child process, fed the layer's tar stream through a pipe.

Extraction is Python work plus several system calls per member. In its own process it runs
beside the parent's download, decompression, hashing and tar-split, instead of sharing one
GIL with them (and with the other layers). The child reads the same bytes with the same
TarReader and applies them with the same Extractor as an extraction in the calling thread;
it reports how far it got as an `Outcome`, and the parent decides which error came first.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import pickle
import signal
from collections.abc import Iterator
from dataclasses import dataclass

from emustore.errors import LayerError
from emustore.layers.extract import Extractor
from emustore.layers.tarstream import ByteStream, TarReader
from emustore.layers.unprivileged import Unwritable

PIPE_SIZE = 1 << 20  # fewer context switches than the default 64 KiB (capped by pipe-max-size)
READ_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Outcome:
    """What the child did: members applied, or the error that stopped it and where."""

    applied: int
    error: str | None = None
    extracting: bool = False  # the error came from applying a member, not from reading the stream
    unwritable: Unwritable | None = None
    size: int = 0  # the layer size, measured after a complete extraction

    def error_first(self, index: int) -> LayerError | None:
        """The child's error if it comes before the parent's at member `index` in archive order:
        an extraction error at a member the parent reached (reading errors are the parent's too)."""
        if self.error is not None and self.extracting and self.applied <= index:
            return LayerError(self.error)
        return None


class ExtractProcess:
    """Forks the child at construction; `feed()` the tar stream, then `finish()` (or `abort()`)."""

    def __init__(self, diff_dir: str, opaque_xattr: str) -> None:
        data_read, self._data = os.pipe()
        self._results, result_write = os.pipe()
        try:
            fcntl.fcntl(self._data, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child ends in os._exit
            _child(data_read, result_write, diff_dir, opaque_xattr)
        os.close(data_read)
        os.close(result_write)
        self.ended = False  # the child stopped reading (it failed): feeding is pointless
        self._outcome: Outcome | None = None

    def feed(self, chunk: bytes) -> None:
        """Hand the child the next bytes of the tar stream (blocks while its pipe is full)."""
        if self.ended:
            return
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._data, view) :]
        except BrokenPipeError:
            self.ended = True

    def finish(self) -> Outcome:
        """End the stream and wait for the child's outcome (once; later calls repeat it)."""
        if self._outcome is None:
            self._close_data()
            payload = bytearray()
            while chunk := os.read(self._results, READ_SIZE):
                payload += chunk
            os.close(self._results)
            _, status = os.waitpid(self.pid, 0)
            self._outcome = pickle.loads(payload) if payload else _died(status)
        return self._outcome

    def abort(self) -> None:
        """Stop the child now (the layer is being abandoned) and reap it."""
        if self._outcome is not None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._close_data()
        os.close(self._results)
        os.waitpid(self.pid, 0)
        self._outcome = Outcome(0, "extraction stopped")

    def _close_data(self) -> None:
        if self._data >= 0:
            os.close(self._data)
            self._data = -1


def _died(status: int) -> Outcome:
    how = "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "status %d" % os.WEXITSTATUS(status)
    return Outcome(0, "failed to register layer: the extraction process ended with %s" % how, extracting=True)


def _child(data: int, results: int, diff_dir: str, opaque_xattr: str) -> None:  # pragma: no cover
    """The child's whole life: extract, report, exit without running the parent's cleanups."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        _close_other_fds({0, 1, 2, data, results})
        outcome = extract_stream(_chunks(data), diff_dir, opaque_xattr)
        while os.read(data, READ_SIZE):  # the bytes after the archive end: the parent still sends them
            pass
        payload = pickle.dumps(outcome)
        while payload:
            payload = payload[os.write(results, payload) :]
    except BaseException:
        os._exit(70)
    os._exit(0)


def extract_stream(chunks: Iterator[bytes], diff_dir: str, opaque_xattr: str) -> Outcome:
    """Apply a whole tar stream to `diff_dir`; stop at the first error, reporting where."""
    reader = TarReader(ByteStream(chunks, _ignore))
    extractor = Extractor(diff_dir, opaque_xattr)
    applied = 0
    while True:
        try:
            hdr = reader.next()
        except LayerError as exc:
            return Outcome(applied, str(exc))
        if hdr is None:
            break
        pieces = reader.data()
        try:
            extractor.apply(hdr, pieces)
            for _ in pieces:  # content the extraction did not need
                pass
        except LayerError as exc:
            return Outcome(applied, str(exc), extracting=not reader.truncated)
        applied += 1
    try:
        extractor.finish()
    except LayerError as exc:
        return Outcome(applied, str(exc), extracting=True)
    return Outcome(applied, unwritable=extractor.unwritable, size=extractor.layer_size())


def _chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, READ_SIZE):
        yield chunk


def _ignore(chunk: bytes) -> None:
    pass


def _close_other_fds(keep: set[int]) -> None:
    """Close what the fork inherited (other layers' pipes, sockets): their ends must see EOF."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
