"""A forked worker process: fed bytes through a pipe, its result sent back pickled.

Both the layer process (layer_process.py) and the extraction process (extract_process.py)
are such workers. A worker dies with the thread that forked it (SIGKILL), leaves Ctrl-C to
its parent, and closes every descriptor it inherited but its own two pipes, so that no pipe
of another layer is kept open by mistake.

Workers are forked while other threads of the parent run (downloads, small layers unpacked in
place). A child has only the thread that forked it: a lock another thread held at that moment
stays taken in the child. So the native code a worker uses keeps no lock of its own after its
first call, and that first call is made at import (see tarsplit.py: fastcrc's CPU detection).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import os
import pickle
import signal
from collections.abc import Callable, Iterator

_PR_SET_PDEATHSIG = 1
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_F_SETPIPE_SZ = 1031
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: a child must not dlopen
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # fewer context switches than the default 64 KiB (capped by pipe-max-size)


class Worker:
    """Forks a child running `work(chunks)` over the bytes `send` gives it; `finish()` returns
    what `work` returned (None if the child died: `exit` says how), `abort()` stops it."""

    def __init__(self, work: Callable[[Iterator[bytes]], object]) -> None:
        data_read, self._data = os.pipe()
        self._results, results_write = os.pipe()
        try:
            fcntl.fcntl(self._data, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child ends in os._exit
            _run(work, data_read, results_write)
        os.close(data_read)
        os.close(results_write)
        self.ended = False  # the child stopped reading (it ended early): sending is pointless
        self.exit = ""  # how a child that sent no result ended ("signal 9", "status 70")
        self._done = False

    def send(self, data: bytes | bytearray | memoryview) -> bool:
        """Hand the child more bytes; False once it no longer reads them."""
        if not self.ended and not _write_all(self._data, data):
            self.ended = True
        return not self.ended

    def finish(self) -> object:
        """End the stream and wait for the child; its result, or None if it sent none."""
        self._done = True
        self._close_data()
        payload = bytearray()
        while chunk := os.read(self._results, READ_SIZE):
            payload += chunk
        os.close(self._results)
        _, status = os.waitpid(self.pid, 0)
        if payload:
            return pickle.loads(payload)
        self.exit = "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "status %d" % os.WEXITSTATUS(status)
        return None

    def abort(self) -> None:
        """Stop the child now and reap it (nothing, if `finish` already did)."""
        if self._done:
            return
        self._done = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._close_data()
        os.close(self._results)
        os.waitpid(self.pid, 0)

    def _close_data(self) -> None:
        if self._data >= 0:
            os.close(self._data)
            self._data = -1


def _run(work: Callable[[Iterator[bytes]], object], data: int, results: int) -> None:  # pragma: no cover
    """The child's whole life: work, send the result, exit without the parent's cleanups."""
    try:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        _keep_freed_memory()
        gc.freeze()  # what the parent made is never collected here: a collection would copy its pages
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _close_fds_but({data, results})
        _write_all(results, pickle.dumps(work(_read_chunks(data))))
    except BaseException:
        os._exit(70)
    os._exit(0)


def _keep_freed_memory() -> None:
    """Have malloc reuse freed buffers instead of returning them to the kernel: each chunk of a
    layer is a new buffer of up to a MiB, and every page taken anew from the kernel is a fault
    (half of a worker's page faults, otherwise). glibc only; elsewhere nothing changes."""
    mallopt = getattr(_LIBC, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 8 << 20)
        mallopt(_M_TRIM_THRESHOLD, 32 << 20)


def _close_fds_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> bool:
    """Write everything; False when the reader is gone."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        return False
    finally:
        view.release()
    return True


def _read_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, READ_SIZE):
        yield chunk
