"""A layer's extraction in a forked child process, fed the parsed members through a pipe.

Extraction is Python work plus several system calls per member. In its own process it runs
beside the parent's download, decompression, hashing, tar parsing and tar-split, instead of
sharing one GIL with them (and with the other layers). The child is forked with the Extractor
that applied the members so far (pipeline._Extraction forks it once a layer shows many small
files) and carries on with it; the parent sends each further member it parsed as a record
(header fields, then the content), the child applies them in order and reports how far it
got: `Outcome`.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from emustore.errors import LayerError
from emustore.layers.extract import Extractor
from emustore.layers.forking import Worker
from emustore.layers.tarstream import ByteStream, TarHeader
from emustore.layers.unprivileged import Unwritable

SEND_AT = 1 << 20  # records buffered before they go down the pipe
SEND_DIRECTLY = 64 << 10  # content pieces this large are written to the pipe as they are
_NO_ATIME = -(1 << 63)
# typeflag, mode, uid, gid, size, mtime_ns, atime_ns, devmajor, devminor, len(name), len(linkname), len(xattrs)
_RECORD = struct.Struct("<BqqqqqqqqIII")


@dataclass(frozen=True)
class Outcome:
    """What the child did: members applied, or the extraction error that stopped it and where."""

    applied: int
    error: str | None = None
    unwritable: Unwritable | None = None
    size: int = 0  # the layer size, once the extraction is complete

    def error_first(self, index: int) -> LayerError | None:
        """The child's error if it comes first in archive order: it happened at a member the
        parent reached (index: the parent's member when the parent failed)."""
        if self.error is not None and self.applied <= index:
            return LayerError(self.error)
        return None


class ExtractProcess:
    """Forks the child at construction, with `extractor` (its state as it is now: `start` members
    applied); send each further member (`member`, then its `content`), then `finish()` for the
    outcome, or `abort()`. The extractor is the child's from then on: not for use here."""

    def __init__(self, extractor: Extractor, start: int = 0) -> None:
        self._worker = Worker(lambda chunks: apply_records(chunks, extractor, start))
        self.pid = self._worker.pid
        self._buffer = bytearray()
        self._outcome: Outcome | None = None

    @property
    def ended(self) -> bool:
        """The child stopped reading (it failed): sending is pointless."""
        return self._worker.ended

    def member(self, hdr: TarHeader) -> None:
        """Send a member's header; its content (hdr.data_size bytes) follows through `content`."""
        xattrs = pickle.dumps(hdr.xattrs) if hdr.xattrs else b""
        self._buffer += _RECORD.pack(
            hdr.typeflag, hdr.mode, hdr.uid, hdr.gid, hdr.size, hdr.mtime_ns,
            _NO_ATIME if hdr.atime_ns is None else hdr.atime_ns, hdr.devmajor, hdr.devminor,
            len(hdr.name), len(hdr.linkname), len(xattrs),
        )
        self._buffer += hdr.name
        self._buffer += hdr.linkname
        self._buffer += xattrs
        if len(self._buffer) >= SEND_AT:
            self._send()

    def content(self, piece: bytes | memoryview) -> None:
        if len(piece) >= SEND_DIRECTLY:  # large: straight from the decompressed chunk, not copied
            self._send()
            self._worker.send(piece)
            return
        self._buffer += piece
        if len(self._buffer) >= SEND_AT:
            self._send()

    def _send(self) -> None:
        if self._buffer:
            self._worker.send(self._buffer)
            self._buffer.clear()

    def finish(self) -> Outcome:
        """Send what is buffered, end the stream and wait for the child's outcome (once; later
        calls repeat it). After a failure of the parent's, the child stops where the records do."""
        if self._outcome is None:
            self._send()
            outcome = self._worker.finish()
            self._outcome = outcome if isinstance(outcome, Outcome) else Outcome(
                0, "failed to register layer: the extraction process ended with %s" % self._worker.exit
            )
        return self._outcome

    def abort(self) -> None:
        """Stop the child now (the layer is being abandoned) and reap it."""
        if self._outcome is None:
            self._worker.abort()
            self._outcome = Outcome(0, "extraction stopped")


def apply_records(chunks: Iterator[bytes], extractor: Extractor, applied: int = 0) -> Outcome:
    """Apply the members of a record stream in order with `extractor` (which applied the first
    `applied` members of the layer); stop at the first error. A stream ending inside a record
    (the parent failed there) ends the extraction."""
    stream = ByteStream(chunks, _ignore)
    while True:
        head = stream.read(_RECORD.size)
        if len(head) < _RECORD.size:
            break
        kind, mode, uid, gid, size, mtime, atime, major, minor, name_len, link_len, xattrs_len = _RECORD.unpack(head)
        names = stream.read(name_len + link_len + xattrs_len)
        if len(names) < name_len + link_len + xattrs_len:
            break
        name, linkname = names[:name_len], names[name_len : name_len + link_len]
        xattrs = names[name_len + link_len :] if xattrs_len else b""
        hdr = TarHeader(
            name, linkname, kind, mode, uid, gid, size, mtime, None if atime == _NO_ATIME else atime,
            major, minor, pickle.loads(xattrs) if xattrs else {},
        )
        pieces = stream.pieces(hdr.data_size)
        try:
            extractor.apply(hdr, pieces)
        except LayerError as exc:
            return Outcome(applied, str(exc))
        for _ in pieces:  # content the extraction did not need
            pass
        applied += 1
    try:
        extractor.finish()
    except LayerError as exc:
        return Outcome(applied, str(exc))
    return Outcome(applied, unwritable=extractor.unwritable, size=extractor.layer_size())


def _ignore(chunk: bytes) -> None:
    pass
