"""What the forked worker processes share: their start, and moving bytes over pipes."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: a child must not dlopen
READ_SIZE = 1 << 20


def become_worker(keep: set[int]) -> None:
    """In a just-forked child: killed when the thread that forked it ends, Ctrl-C left to the
    parent, every inherited fd closed but `keep` and stdio (other pipes' ends must see EOF)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise


def write_all(fd: int, data: bytes | bytearray | memoryview) -> bool:
    """Write everything; False when the reader is gone (it ended early)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        return False
    finally:
        view.release()
    return True


def read_all(fd: int) -> bytes:
    """Everything until the writer closes its end."""
    out = bytearray()
    while chunk := os.read(fd, READ_SIZE):
        out += chunk
    return bytes(out)


def read_chunks(fd: int) -> Iterator[bytes]:
    """What arrives on `fd`, chunk by chunk, until the writer closes its end."""
    while chunk := os.read(fd, READ_SIZE):
        yield chunk
