"""Reassembling a layer's original tar stream from tar-split.json.gz and its diff dir.

This is how dockerd produces the bytes for `docker save` and `docker push`: raw segments are
written verbatim and each file's content is read back from disk and checked against its CRC.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from emustore.errors import LayerError
from emustore.layers.rootfs import RootedPaths
from emustore.layers.tarsplit import crc64_iso, crc_payload

READ_SIZE = 1 << 20


def tar_split_entries(path: str | os.PathLike[str]) -> Iterator[dict[str, object]]:
    """The decoded JSON entries of a tar-split.json.gz file, in order."""
    with gzip.open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def entry_size(entry: dict[str, object]) -> int:
    """A file entry's content size (0 when absent or not a number)."""
    size = entry.get("size")
    return size if isinstance(size, int) else 0


def entry_name(entry: dict[str, object]) -> bytes:
    """A file entry's name as bytes (from `name`, or base64 `name_raw`)."""
    if "name_raw" in entry:
        return base64.b64decode(str(entry["name_raw"]))
    return str(entry.get("name", "")).encode("utf-8")


def assemble(tar_split: str | os.PathLike[str], files_root: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the layer's tar stream; file contents come from `files_root` (a diff dir)."""
    paths = RootedPaths(os.fsencode(Path(files_root).absolute()))
    for entry in tar_split_entries(tar_split):
        if entry.get("type") == 2:
            yield base64.b64decode(str(entry.get("payload") or ""))
            continue
        size = entry_size(entry)
        if size <= 0:
            continue
        name = entry_name(entry)
        yield from _file_content(paths, name, size, base64.b64decode(str(entry.get("payload") or "")))


def _file_content(paths: RootedPaths, name: bytes, size: int, expected_crc: bytes) -> Iterator[bytes]:
    shown = name.decode("utf-8", "backslashreplace")
    try:  # resolved inside the layer; non-blocking, so that a fifo put there is refused, not waited on
        fd = os.open(paths.real(name, follow_last=True), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise LayerError("cannot read %s for reassembly: %s" % (shown, exc.strerror)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayerError("cannot read %s for reassembly: not a regular file" % shown)
    crc = 0
    remaining = size
    try:
        while remaining:
            chunk = os.read(fd, min(READ_SIZE, remaining))
            if not chunk:
                raise LayerError("file %s is shorter than its tar-split entry (%d bytes)" % (shown, size))
            crc = crc64_iso(chunk, crc)
            remaining -= len(chunk)
            yield chunk
    finally:
        os.close(fd)
    if crc_payload(crc) != expected_crc:
        raise LayerError('file integrity checksum failed for "%s"' % shown)
