"""tar-split metadata (tar-split.json.gz): the JSON-lines packer dockerd 20.10 writes.

Each line is one Go-JSON object; type 1 is a file entry (name, size, CRC-64/ISO of the
content), type 2 a raw segment of archive bytes (headers, padding, trailing data).
"""

from __future__ import annotations

import base64
import os
import gzip
import io
from typing import BinaryIO

import fastcrc

from emustore.errors import LayerError
from emustore.gojson import go_string
from emustore.layers.gopath import go_clean

FILE_TYPE = 1
SEGMENT_TYPE = 2


def crc64_iso(data: bytes | memoryview, previous: int | None = None) -> int:
    """CRC-64 with the ISO polynomial as Go's hash/crc64 computes it, continuable."""
    return fastcrc.crc64.go_iso(data, previous)


def crc_payload(crc: int) -> bytes:
    """The 8 big-endian bytes tar-split stores for a file's checksum."""
    return crc.to_bytes(8, "big")


class TarSplitPacker:
    """Writes tar-split entries as gzip-compressed Go JSON lines, rejecting duplicate paths."""

    def __init__(self, out: BinaryIO) -> None:
        self._gz = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0)
        self._buf = io.StringIO()
        self._position = 0
        self._seen: set[bytes] = set()

    def add_segment(self, raw: bytes | memoryview) -> None:
        """Append a raw segment; an empty one is written as "" (tar-split's read of 0 bytes)."""
        payload = base64.b64encode(raw).decode("ascii")
        self._write('{"type":2,"payload":"%s","position":%d}\n' % (payload, self._position))

    def add_file(self, name: bytes, size: int, crc: int | None) -> None:
        """Append a file entry; `crc` is None for entries without content (size 0)."""
        cleaned = go_clean(name)
        if cleaned in self._seen:
            raise LayerError(
                "failed to register layer: duplicates of file paths not supported: %r"
                % name.decode("utf-8", "backslashreplace")
            )
        self._seen.add(cleaned)
        try:
            field = '"name":' + go_string(name.decode("utf-8"))
        except UnicodeDecodeError:
            field = '"name_raw":"%s"' % base64.b64encode(name).decode("ascii")
        parts = ['{"type":1,', field, ","]
        if size:
            parts.append('"size":%d,' % size)
        if crc is None:
            parts.append('"payload":null,')
        else:
            parts.append('"payload":"%s",' % base64.b64encode(crc_payload(crc)).decode("ascii"))
        parts.append('"position":%d}\n' % self._position)
        self._write("".join(parts))

    def _write(self, line: str) -> None:
        self._position += 1
        self._buf.write(line)
        if self._buf.tell() > 1 << 16:
            self.flush()

    def flush(self) -> None:
        data = self._buf.getvalue()
        if data:
            self._gz.write(data.encode("utf-8"))
            self._buf = io.StringIO()

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
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(lines)
            gz.write(b'{"type":2,"payload":"","position":%d}\n' % count)
