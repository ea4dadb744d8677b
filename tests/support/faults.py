"""Faults the robustness tests inflict themselves: pulls in subprocesses (to kill), hostile blobs.

Network faults live in tests/support/faultproxy.py.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from collections.abc import Iterable, Iterator

from tests.support.tarlayer import BLOCK, Header


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


class counted:  # noqa: N801 (used like a function)
    """Iterates `chunks`, counting the bytes taken (`total`): what a reader actually consumed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.total += len(chunk)
        return chunk
