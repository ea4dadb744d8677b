"""Decompression chosen by magic bytes, cut into the reads dockerd 20.10 would see.

dockerd's tar-split records the bytes after a tar's end-of-archive marker one segment per
`Read` call, so the chunks this module yields end exactly where Go's readers return:
gzip output at every 32 KiB of a member's output and at member ends (Go's flate window),
everything else at every 32 KiB of the stream (the 32 KiB pipe dockerd copies blobs through).

zstd is a deliberate divergence (dockerd 20.10 cannot pull it): its output is cut as one gzip
member would be, so a zstd layer gets exactly the tree its gzip twin gets from dockerd.
"""

from __future__ import annotations

import bz2
import lzma
from collections.abc import Iterator
from typing import IO, Callable, cast

import zstandard
from isal import isal_zlib

from emustore.errors import LayerError

ISAL_ERROR = cast("type[Exception]", isal_zlib.error)  # an exception class; isal's stubs do not say so

READ_WINDOW = 32768
BATCH = 32 * READ_WINDOW  # decompressed bytes handed out at once: 32 of Go's reads
INPUT_SLICE = 64 << 10  # compressed bytes given to the gzip decompressor per call
ZSTD_READ = 1 << 20  # the most compressed bytes zstandard's reader asks for at once (a whole chunk)
FILE_READ = 1 << 20  # tar-split's read size after the archive end
GZIP, ZSTD, BZIP2, XZ, PLAIN = "gzip", "zstd", "bzip2", "xz", "uncompressed"

_MAGICS = (
    (BZIP2, b"BZh"),
    (GZIP, b"\x1f\x8b\x08"),
    (XZ, b"\xfd7zXZ\x00"),
    (ZSTD, b"\x28\xb5\x2f\xfd"),
)


def sniff(head: bytes) -> str:
    """The compression a stream starting with `head` uses (dockerd's order: bzip2, gzip, xz)."""
    for kind, magic in _MAGICS:
        if head.startswith(magic):
            return kind
    return PLAIN


class Decompressed:
    """Iterates the decompressed stream in chunks of whole Go reads (up to BATCH bytes each).

    Every chunk starts on a Go read cut and holds whole READ_WINDOW reads but for its last,
    so `ByteStream.rest(READ_WINDOW)` recovers dockerd's reads after the archive end.

    After the iteration, `final_empty_read` tells whether Go's last data read came without
    EOF, so that one more empty read (an empty tar-split segment) follows it.
    """

    def __init__(self, compressed: Iterator[bytes], refusal: Callable[[int], str | None] | None = None) -> None:
        """`refusal(total)`, asked after each chunk, says why `total` decompressed bytes are too many."""
        self._src = _Peekable(compressed)
        self.kind = sniff(self._src.peek(6))
        self.final_empty_read = True
        self.total = 0
        self._refusal = refusal

    def __iter__(self) -> Iterator[bytes]:
        if self.kind == GZIP:
            chunks = self._gzip()
        elif self.kind == PLAIN:
            chunks = _windowed(iter(self._src))
        elif self.kind == ZSTD:
            chunks = self._as_one_member(_windowed(_zstd(iter(self._src))))
        else:
            chunks = _windowed(self._other())
        for chunk in chunks:
            self.total += len(chunk)
            if self._refusal is not None and (why := self._refusal(self.total)) is not None:
                raise LayerError(why)
            yield chunk

    def _gzip(self) -> Iterator[bytes]:
        """Multi-member gzip; trailing bytes that are not another member are an error."""
        src = _sliced(iter(self._src))
        pending: bytes | memoryview = b""
        while True:
            window = bytearray()
            member_pos = 0
            d = isal_zlib.decompressobj(wbits=31)
            while not d.eof:
                if not pending:
                    pending = next(src, b"")
                    if not pending:
                        raise LayerError("unexpected EOF in gzip stream")
                want = BATCH - len(window)
                try:
                    out = d.decompress(pending, want)
                except ISAL_ERROR as exc:
                    raise LayerError("gzip: invalid data: %s" % exc) from None
                pending = d.unconsumed_tail
                if len(out) == BATCH:
                    member_pos += BATCH
                    yield out
                    continue
                window += out
                if len(window) == BATCH:
                    member_pos += BATCH
                    yield bytes(window)
                    window = bytearray()
            pending = d.unused_data
            if window:
                member_pos += len(window)
                yield bytes(window)
            self.final_empty_read = member_pos % READ_WINDOW == 0
            while not pending:
                pending = next(src, b"")
                if not pending:
                    return
            if len(pending) >= 2 and bytes(pending[:2]) != b"\x1f\x8b":
                raise LayerError("gzip: invalid header after the last member")

    def _as_one_member(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Gzip's end rule for a single member: no empty read unless the length is 32 KiB-aligned."""
        length = 0
        for chunk in chunks:
            length += len(chunk)
            yield chunk
        self.final_empty_read = length % READ_WINDOW == 0

    def _other(self) -> Iterator[bytes]:
        factory: Callable[[], object] = bz2.BZ2Decompressor if self.kind == BZIP2 else lzma.LZMADecompressor
        return _stdlib_stream(iter(self._src), factory, self.kind)


def _zstd(src: Iterator[bytes]) -> Iterator[bytes]:
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(IO[bytes], _IterFile(src)), read_size=ZSTD_READ, read_across_frames=True  # it only calls read()
    )
    try:
        while True:
            out = reader.read(1 << 20)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise LayerError("zstd: invalid data: %s" % exc) from None


def _stdlib_stream(src: Iterator[bytes], factory: Callable[[], object], kind: str) -> Iterator[bytes]:
    d = factory()
    pending = b""
    try:
        while True:
            if d.eof:  # type: ignore[attr-defined]
                rest = d.unused_data  # type: ignore[attr-defined]
                if rest or next(src, b""):
                    raise LayerError("%s: trailing data after the compressed stream" % kind)
                return
            if not pending and d.needs_input:  # type: ignore[attr-defined]
                pending = next(src, b"")
                if not pending:
                    raise LayerError("unexpected EOF in %s stream" % kind)
            out = d.decompress(pending, 1 << 20)  # type: ignore[attr-defined]
            pending = b""
            if out:
                yield out
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise LayerError("%s: invalid data: %s" % (kind, exc)) from None


def file_read_cuts(rest: Iterator[bytes], offset: int) -> Iterator[bytes]:
    """The reads after a plain tar's end (at `offset`) when dockerd reads the file itself (docker load).

    Its 32 KiB bufio buffer gives what it still holds (the rest of the current window), then
    tar-split's 1 MiB reads go straight to the file: 32 windows each."""
    if offset % READ_WINDOW:
        tail = next(rest, None)
        if tail is None:
            return
        yield tail
    group = bytearray()
    for chunk in rest:
        group += chunk
        if len(group) >= FILE_READ:
            yield bytes(group[:FILE_READ])
            del group[:FILE_READ]
    if group:
        yield bytes(group)


def _windowed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut a byte stream into chunks of whole READ_WINDOW reads (at least BATCH bytes but the last)."""
    pending = bytearray()
    for chunk in chunks:
        if not pending and len(chunk) >= BATCH and len(chunk) % READ_WINDOW == 0:
            yield chunk
            continue
        pending += chunk
        if len(pending) >= BATCH:
            cut = len(pending) - len(pending) % READ_WINDOW
            yield bytes(pending[:cut])
            del pending[:cut]
    if pending:
        yield bytes(pending)


def _sliced(chunks: Iterator[bytes]) -> Iterator[memoryview]:
    """Chunks as views of at most INPUT_SLICE bytes: a decompressor's unconsumed tail stays small."""
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), INPUT_SLICE):
            yield view[start : start + INPUT_SLICE]


class _Peekable:
    """A chunk iterator whose first bytes can be looked at without consuming them."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._head += chunk
        return self._head[:n]

    def __iter__(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
            self._head = b""
        yield from self._chunks


class _IterFile:
    """A minimal read-only file object over a chunk iterator (for zstandard's reader).

    A read returns at most what is left of the current chunk (a short read, as a pipe gives),
    the chunk itself when it fits: no chunk is copied or joined."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            rest = [self._chunk[self._pos :], *self._chunks]
            self._chunk, self._pos = b"", 0
            return b"".join(rest)
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = next(self._chunks, b""), 0
        if self._pos == 0 and n >= len(self._chunk):
            out = self._chunk
        else:
            out = self._chunk[self._pos : self._pos + n]
        self._pos += len(out)
        return out
