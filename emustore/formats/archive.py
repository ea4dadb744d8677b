"""What the archive writers share: the images to write, their layers, and the tar writer.

The formats (docker_archive.py, oci.py) know nothing about the store the images come from: an
image is its id, tags, config bytes and layers, each layer a stream of its tar checked as read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

from emustore.errors import LayerError, StoreError
from emustore.reference import Reference

BLOCK = 512


class ArchiveLayer(Protocol):
    """One layer to write: its ids, its tar's length, and the tar itself (verified as it streams)."""

    @property
    def chain_id(self) -> str: ...

    @property
    def diff_id(self) -> str: ...

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


@dataclass
class ArchiveImage:
    """One image to write, with the tags that name it in the archive (first-seen order)."""

    image_id: str
    config_bytes: bytes
    layers: list[ArchiveLayer]
    tags: list[Reference] = field(default_factory=list)
    parent: str | None = None  # the Parent `docker load` restores (docker-archive only)


class ArchiveWriter:
    """USTAR members as Go's archive/tar writes docker save's: root-owned, type bits in the mode
    field, device fields filled, and two zero blocks at the end (no record padding)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def _header(self, name: str, mode: int, kind: bytes, mtime: float, size: int = 0, link: str = "") -> None:
        if len(name) > 100 or len(link) > 100:
            raise StoreError(f"archive name too long: {name}")
        fields = [
            name.encode().ljust(100, b"\0"),
            b"%07o\0" % mode, b"%07o\0" % 0, b"%07o\0" % 0,
            b"%011o\0" % size, b"%011o\0" % int(mtime),
            b" " * 8, kind, link.encode().ljust(100, b"\0"),
            b"ustar\x0000", b"root".ljust(32, b"\0"), b"root".ljust(32, b"\0"),
            b"%07o\0" % 0, b"%07o\0" % 0,
        ]
        header = bytearray(b"".join(fields).ljust(BLOCK, b"\0"))
        header[148:156] = b"%06o\0 " % sum(header)
        self.out.write(header)

    def _pad(self, size: int) -> None:
        self.out.write(b"\0" * (-size % BLOCK))

    def directory(self, name: str, mtime: float) -> None:
        self._header(name + "/", 0o40755, b"5", mtime)

    def file(self, name: str, data: bytes, mtime: float) -> None:
        self._header(name, 0o100644, b"0", mtime, len(data))
        self.out.write(data)
        self._pad(len(data))

    def stream(self, name: str, size: int, chunks: Iterator[bytes], mtime: float) -> None:
        self._header(name, 0o100644, b"0", mtime, size)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            self.out.write(chunk)
        if written != size:
            raise LayerError(f"{name}: reassembled {written} bytes, its tar-split announces {size}")
        self._pad(size)

    def symlink(self, name: str, target: str, mtime: float) -> None:
        self._header(name, 0o120777, b"2", mtime, link=target)

    def close(self) -> None:
        self.out.write(b"\0" * (2 * BLOCK))
