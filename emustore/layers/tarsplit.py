"""tar-split metadata (tar-split.json.gz): the JSON-lines packer dockerd writes.

Each line is one Go-JSON object; type 1 is a file entry (name, size, CRC-64/ISO of the
content), type 2 a raw segment of archive bytes (headers, padding, trailing data).
"""

from __future__ import annotations

import base64
import gzip
import os
import re
from binascii import b2a_base64
from typing import BinaryIO

import fastcrc
from isal import igzip

from emustore.errors import LayerError
from emustore.gojson import go_string
from emustore.layers.gopath import go_clean

FILE_TYPE = 1
SEGMENT_TYPE = 2
FLUSH_AT = 1 << 20  # JSON text buffered per compressor call (each one gives up the GIL and waits to retake it)
_PLAIN_NAME = re.compile(rb'[^\x00-\x1f"\\<>&\x7f-\xff]*\Z')  # ASCII Go's JSON writes as is


def crc64_iso(data: bytes | memoryview, previous: int | None = None) -> int:
    """CRC-64 with the ISO polynomial as Go's hash/crc64 computes it, continuable."""
    return fastcrc.crc64.go_iso(data, previous)


# fastcrc picks its CPU code on the first call, under a one-time lock. Made here, at import,
# before any thread runs: a process forked while another thread is inside that first call
# (a pull unpacks small layers in its own threads while it forks layer processes) would
# inherit the lock taken and wait on it forever.
crc64_iso(b"\0")


def crc_payload(crc: int) -> bytes:
    """The 8 big-endian bytes tar-split stores for a file's checksum."""
    return crc.to_bytes(8, "big")


GO_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # Go's gzip.Writer: no name, mtime 0, XFL 0, OS 255


def go_gzip_writer(out: BinaryIO) -> igzip.IGzipFile:
    """A gzip writer onto `out` whose header is GO_GZIP_HEADER, as dockerd's tar-split files start.

    No file name (isal takes `out`'s name unless told ""), mtime 0; level 1 keeps XFL 0 (isal
    marks its level 0 "fastest", XFL 4). The deflate bytes after it are isal's, not Go's."""
    return igzip.IGzipFile(filename="", fileobj=out, mode="wb", compresslevel=1, mtime=0)


class TarSplitPacker:
    """Writes tar-split entries as gzip-compressed Go JSON lines, rejecting duplicate paths.

    The header is Go's; the deflate bytes differ from dockerd's (another compressor); the JSON
    lines are the same (`go122`: names escaped as Go >= 1.22 does, dockerd 26 and later)."""

    def __init__(self, out: BinaryIO, go122: bool = False) -> None:
        self._gz = go_gzip_writer(out)
        self._go122 = go122
        self._lines: list[bytes] = []
        self._buffered = 0
        self._position = 0
        self._seen: set[bytes] = set()

    def add_segment(self, raw: bytes | memoryview) -> None:
        """Append a raw segment; an empty one is written as "" (tar-split's read of 0 bytes)."""
        self._write(b'{"type":2,"payload":"%b","position":%d}\n' % (b2a_base64(raw, newline=False), self._position))

    def add_file(self, name: bytes, size: int, crc: int | None) -> None:
        """Append a file entry; `crc` is None for entries without content (size 0)."""
        cleaned = go_clean(name)
        if cleaned in self._seen:
            raise LayerError(
                "failed to register layer: duplicates of file paths not supported: %r"
                % name.decode("utf-8", "backslashreplace")
            )
        self._seen.add(cleaned)
        if _PLAIN_NAME.match(name):
            field = b'"name":"%b"' % name
        else:
            try:
                field = b'"name":' + go_string(name.decode("utf-8"), self._go122).encode("utf-8")
            except UnicodeDecodeError:
                field = b'"name_raw":"%b"' % base64.b64encode(name)
        sized = b'"size":%d,' % size if size else b""
        payload = b'"%b"' % b2a_base64(crc_payload(crc), newline=False) if crc is not None else b"null"
        self._write(b'{"type":1,%b,%b"payload":%b,"position":%d}\n' % (field, sized, payload, self._position))

    def _write(self, line: bytes) -> None:
        self._position += 1
        self._lines.append(line)
        self._buffered += len(line)
        if self._buffered > FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._gz.write(b"".join(self._lines))
            self._lines = []
            self._buffered = 0

    def close(self) -> None:
        """Flush the JSON lines and end the gzip stream (the underlying file stays open)."""
        self.flush()
        self._gz.close()


def append_empty_segment(source: os.PathLike[str] | str, target: os.PathLike[str] | str) -> None:
    """Copy a tar-split file adding one final empty segment (a re-read through a pipe)."""
    with gzip.open(source, "rb") as src:
        lines = src.read()
    count = lines.count(b"\n")
    with open(target, "wb") as out:
        with go_gzip_writer(out) as gz:
            gz.write(lines)
            gz.write(b'{"type":2,"payload":"","position":%d}\n' % count)
