"""Byte-exact tar streams for test layers: every header is written here, not by tarfile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

BLOCK = 512
DEFAULT_MTIME = 1700000000  # 2023-11-14T22:13:20Z

Name = str | bytes
LongStyle = Literal["pax", "gnu"]
HeaderMagic = Literal["ustar", "gnu"]

_MAGIC = {"ustar": b"ustar\x0000", "gnu": b"ustar  \x00"}


def _b(value: Name) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def _numeric(value: int, width: int) -> bytes:
    """Octal with a NUL terminator when it fits, else GNU base-256 (negative: two's complement)."""
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\x00" % (width - 1, value)
    if not -(256 ** (width - 1)) <= value < 256 ** (width - 1):
        raise ValueError(f"{value} does not fit a {width}-byte numeric field")
    body = (value % 256 ** (width - 1)).to_bytes(width - 1, "big")
    return (b"\xff" if value < 0 else b"\x80") + body


def _field(value: bytes, width: int) -> bytes:
    if len(value) > width:
        raise ValueError(f"{value!r} is longer than the {width}-byte header field")
    return value.ljust(width, b"\x00")


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % BLOCK)


def pax_records(records: Mapping[str, Name]) -> bytes:
    """PAX extended header body: `<len> <key>=<value>\\n` records, in the given order."""
    out = b""
    for key, value in records.items():
        body = b" " + key.encode() + b"=" + _b(value) + b"\n"
        size = len(body) + 1
        while len(str(size).encode() + body) != size:
            size += 1
        out += str(size).encode() + body
    return out


@dataclass
class Header:
    """One ustar/GNU header block (the fields a test may want to control)."""

    name: bytes
    typeflag: bytes = b"0"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = DEFAULT_MTIME
    linkname: bytes = b""
    uname: bytes = b""
    gname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    magic: HeaderMagic = "ustar"

    def encode(self) -> bytes:
        block = b"".join(
            [
                _field(self.name, 100),
                _numeric(self.mode, 8),
                _numeric(self.uid, 8),
                _numeric(self.gid, 8),
                _numeric(self.size, 12),
                _numeric(self.mtime, 12),
                b" " * 8,
                self.typeflag,
                _field(self.linkname, 100),
                _MAGIC[self.magic],
                _field(self.uname, 32),
                _field(self.gname, 32),
                _numeric(self.devmajor, 8),
                _numeric(self.devminor, 8),
                b"\x00" * 167,
            ]
        )
        checksum = b"%06o\x00 " % sum(block)
        return block[:148] + checksum + block[156:]


@dataclass
class LayerBuilder:
    """Accumulates tar members; `build()` returns the uncompressed layer stream."""

    chunks: list[bytes] = field(default_factory=list)

    def entry(
        self,
        name: Name,
        typeflag: bytes,
        *,
        data: bytes = b"",
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: int = DEFAULT_MTIME,
        linkname: Name = b"",
        devmajor: int = 0,
        devminor: int = 0,
        uname: Name = b"",
        gname: Name = b"",
        xattrs: Mapping[str, bytes] | None = None,
        pax: Mapping[str, Name] | None = None,
        long: LongStyle = "pax",
        magic: HeaderMagic = "ustar",
    ) -> LayerBuilder:
        """Append one member. Names/link names over 100 bytes go to a PAX record or a GNU
        `././@LongLink` block (`long`); `xattrs` become `SCHILY.xattr.*` records after `pax`."""
        raw_name, raw_link = _b(name), _b(linkname)
        records: dict[str, Name] = {}
        header = Header(
            name=raw_name,
            typeflag=typeflag,
            mode=mode,
            uid=uid,
            gid=gid,
            size=len(data),
            mtime=mtime,
            linkname=raw_link,
            uname=_b(uname),
            gname=_b(gname),
            devmajor=devmajor,
            devminor=devminor,
            magic=magic,
        )
        if len(raw_name) > 100:
            header.name = raw_name[:100]
            self._long_value(records, "path", b"L", raw_name, long)
        if len(raw_link) > 100:
            header.linkname = raw_link[:100]
            self._long_value(records, "linkpath", b"K", raw_link, long)
        records.update(pax or {})
        records.update({f"SCHILY.xattr.{key}": value for key, value in (xattrs or {}).items()})
        if records:
            body = pax_records(records)
            pax_name = (b"PaxHeaders/" + raw_name.rstrip(b"/").rsplit(b"/", 1)[-1])[:100]
            self.chunks.append(Header(pax_name, b"x", size=len(body), mtime=mtime).encode())
            self.chunks.append(_pad(body))
        self.chunks.append(header.encode())
        self.chunks.append(_pad(data))
        return self

    def _long_value(
        self, records: dict[str, Name], key: str, gnu_type: bytes, value: bytes, long: LongStyle
    ) -> None:
        if long == "pax":
            records[key] = value
            return
        body = value + b"\x00"
        self.chunks.append(
            Header(b"././@LongLink", gnu_type, mode=0, size=len(body), mtime=0, magic="gnu").encode()
        )
        self.chunks.append(_pad(body))

    def file(self, name: Name, data: bytes = b"", *, mode: int = 0o644, **kw) -> LayerBuilder:
        return self.entry(name, b"0", data=data, mode=mode, **kw)

    def dir(self, name: Name, *, mode: int = 0o755, **kw) -> LayerBuilder:
        return self.entry(name, b"5", mode=mode, **kw)

    def symlink(self, name: Name, target: Name, *, mode: int = 0o777, **kw) -> LayerBuilder:
        return self.entry(name, b"2", linkname=target, mode=mode, **kw)

    def hardlink(self, name: Name, target: Name, *, mode: int = 0o644, **kw) -> LayerBuilder:
        return self.entry(name, b"1", linkname=target, mode=mode, **kw)

    def chardev(self, name: Name, major: int, minor: int, *, mode: int = 0o666, **kw) -> LayerBuilder:
        return self.entry(name, b"3", devmajor=major, devminor=minor, mode=mode, **kw)

    def blockdev(self, name: Name, major: int, minor: int, *, mode: int = 0o660, **kw) -> LayerBuilder:
        return self.entry(name, b"4", devmajor=major, devminor=minor, mode=mode, **kw)

    def fifo(self, name: Name, *, mode: int = 0o644, **kw) -> LayerBuilder:
        return self.entry(name, b"6", mode=mode, **kw)

    def whiteout(self, path: str, *, uid: int = 1000, gid: int = 1000, **kw) -> LayerBuilder:
        """`dir/.wh.name` hiding `dir/name` of a lower layer (an empty regular file)."""
        parent, _, base = path.rstrip("/").rpartition("/")
        name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
        return self.entry(name, b"0", mode=0o644, uid=uid, gid=gid, **kw)

    def opaque(self, directory: str, **kw) -> LayerBuilder:
        """`dir/.wh..wh..opq`: hide everything lower layers put in `dir`."""
        return self.entry(f"{directory.rstrip('/')}/.wh..wh..opq", b"0", mode=0o644, **kw)

    def raw(self, data: bytes) -> LayerBuilder:
        """Append bytes verbatim (a hand-made header, garbage...)."""
        self.chunks.append(data)
        return self

    def build(self, *, end_blocks: int = 2, trailing: bytes = b"") -> bytes:
        """The tar stream: members, `end_blocks` zero blocks, then `trailing` (writer padding)."""
        return b"".join(self.chunks) + b"\x00" * (BLOCK * end_blocks) + trailing


EMPTY_LAYER = LayerBuilder().build()
