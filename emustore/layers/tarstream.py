"""A streaming tar reader with raw accounting, following Go's archive/tar as tar-split uses it.

Besides each member's header it hands out `raw`: every archive byte consumed since the
previous member's content (padding, extension headers, the member's own header), which is
what tar-split stores as a segment. Header parsing, PAX and GNU long-name rules, and the
end-of-archive rules are Go's, so that names, sizes and errors match dockerd's.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zlib import adler32

from emustore.errors import LayerError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_SPECIAL_FILE = 1 << 20  # Go's limit for PAX and GNU long-name payloads
HEADER_ONLY_TYPES = frozenset(b"123456")  # hard link, symlink, char, block, dir, fifo

_DECIMAL = re.compile(rb"[+-]?[0-9]+")
_INT64 = 1 << 63
_HIGH = bytes(range(0x80, 0x100))


@dataclass(slots=True)
class TarHeader:
    """One archive member after extension headers were merged into it."""

    name: bytes
    linkname: bytes
    typeflag: int
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    atime_ns: int | None = None
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def data_size(self) -> int:
        """Bytes of content that follow the header (header-only types have none)."""
        return 0 if self.typeflag in HEADER_ONLY_TYPES else self.size


class ByteStream:
    """Exact-size reads over an iterator of chunks; `on_chunk` sees every chunk once."""

    def __init__(self, chunks: Iterator[bytes], on_chunk: Callable[[bytes], None]) -> None:
        self._chunks = chunks
        self._on_chunk = on_chunk
        self._chunk = b""
        self._pos = 0
        self.offset = 0

    def _fill(self) -> bool:
        chunk = next(self._chunks, b"")
        if not chunk:
            return False
        self._on_chunk(chunk)
        self._chunk, self._pos = chunk, 0
        return True

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the stream."""
        avail = len(self._chunk) - self._pos
        if avail >= n:
            out = self._chunk[self._pos : self._pos + n]
            self._pos += n
            self.offset += n
            return out
        parts = []
        for piece in self.pieces(n):
            parts.append(bytes(piece))
        return b"".join(parts)

    def pieces(self, n: int) -> Iterator[memoryview]:
        """Yield up to `n` bytes as views into the chunks, without copying."""
        while n > 0:
            if self._pos >= len(self._chunk) and not self._fill():
                return
            take = min(n, len(self._chunk) - self._pos)
            view = memoryview(self._chunk)[self._pos : self._pos + take]
            self._pos += take
            self.offset += take
            n -= take
            yield view

    def rest(self, window: int | None = None) -> Iterator[bytes]:
        """The unread remainder of the current chunk, then every following chunk.

        With `window`, each chunk is further cut at every multiple of `window` from its start."""
        while True:
            chunk, end = self._chunk, len(self._chunk)
            while self._pos < end:
                stop = min(end, (self._pos // window + 1) * window) if window else end
                piece = chunk[self._pos : stop] if self._pos or stop < end else chunk
                self.offset += stop - self._pos
                self._pos = stop
                yield piece
            if not self._fill():
                return


class TarReader:
    """Iterates members; call `data()` to stream a member's content before the next `next()`."""

    def __init__(self, stream: ByteStream, empty_xattrs: bool = False) -> None:
        self._s = stream
        self._empty_xattrs = empty_xattrs
        self._pad = 0
        self._remaining = 0
        self.raw = b""

    def next(self) -> TarHeader | None:
        """The next member, or None at the end of the archive; `raw` holds its segment."""
        if self._remaining:
            raise LayerError("internal error: member content not consumed")
        raw = bytearray()
        pax: dict[bytes, bytes] | None = None
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            if self._pad:
                want, self._pad = self._pad, 0
                pad = self._s.read(want)
                if len(pad) < want:  # Go treats a short final padding as the end
                    self.raw = bytes(raw)
                    return None
                raw += pad
            block = self._read_block(raw)
            if block is None:
                self.raw = bytes(raw)
                return None
            hdr = parse_header(block)
            if hdr.size < 0:
                raise _bad("negative size")
            kind = hdr.typeflag
            if kind in (ord("x"), ord("g")):
                payload = self._special(hdr.size, raw)
                records = parse_pax(payload)
                if kind == ord("g"):
                    merge_pax(hdr, records, self._empty_xattrs)
                    self.raw = bytes(raw)
                    return TarHeader(hdr.name, b"", kind, 0, 0, 0, 0, 0, xattrs=hdr.xattrs)
                pax = records
                continue
            if kind in (ord("L"), ord("K")):
                payload = self._special(hdr.size, raw)
                value = payload.split(b"\0", 1)[0]
                if kind == ord("L"):
                    long_name = value
                else:
                    long_link = value
                continue
            if pax:
                merge_pax(hdr, pax, self._empty_xattrs)
            if long_name:
                hdr.name = long_name
            if long_link:
                hdr.linkname = long_link
            if hdr.typeflag == 0:
                hdr.typeflag = ord("5") if hdr.name.endswith(b"/") else ord("0")
            if hdr.size < 0:
                raise _bad("negative size")
            if hdr.typeflag == ord("S") or (pax and any(k.startswith(b"GNU.sparse.") for k in pax)):
                raise LayerError("sparse files in layers are not supported: %r" % _show(hdr.name))
            self._remaining = hdr.data_size
            self._pad = -hdr.data_size % BLOCK
            self.raw = bytes(raw)
            return hdr

    def _read_block(self, raw: bytearray) -> bytes | None:
        """A header block, or None at a clean end of archive (the end blocks go into raw)."""
        block = self._s.read(BLOCK)
        if not block:
            return None
        if len(block) < BLOCK:
            raise LayerError("unexpected EOF in tar header")
        raw += block
        if block != ZERO_BLOCK:
            return block
        second = self._s.read(BLOCK)
        if not second:
            return None
        if len(second) < BLOCK:
            raise LayerError("unexpected EOF in tar archive")
        raw += second
        if second == ZERO_BLOCK:
            return None
        raise _bad("zero block followed by data")

    def _special(self, size: int, raw: bytearray) -> bytes:
        """The payload of a PAX or GNU long-name header (kept in raw)."""
        if size > MAX_SPECIAL_FILE:
            raise _bad("extension header of %d bytes" % size)
        payload = self._s.read(size)
        if len(payload) < size:
            raise LayerError("unexpected EOF in tar extension header")
        raw += payload
        self._pad = -size % BLOCK
        return payload

    def data(self) -> Iterator[memoryview]:
        """Stream the current member's content."""
        want = self._remaining
        got = 0
        for piece in self._s.pieces(want):
            got += len(piece)
            yield piece
        self._remaining = 0
        if got < want:
            raise LayerError("unexpected EOF in tar member content")


def _bad(why: str) -> LayerError:
    return LayerError("archive/tar: invalid tar header (%s)" % why)


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _cstring(b: bytes) -> bytes:
    return b.partition(b"\0")[0]


def _parse_octal(b: bytes) -> int:
    text = _cstring(b.strip(b" \0"))
    if not text:
        return 0
    if text.isdigit():  # ASCII 0-9 only: no sign, space or underscore that int() would accept
        try:
            value = int(text, 8)
        except ValueError:
            value = 1 << 64
    else:
        value = 1 << 64
    if value >= 1 << 64:
        raise _bad("bad octal field %r" % b)
    return value


def _parse_base256(b: bytes) -> int:
    """Base-256 two's complement (the high bit of the first byte marks it)."""
    inv = 0xFF if b[0] & 0x40 else 0
    x = 0
    for i, c in enumerate(b):
        c ^= inv
        if i == 0:
            c &= 0x7F
        if x >> 56:
            raise _bad("base-256 overflow")
        x = (x << 8) | c
    if x >> 63:
        raise _bad("base-256 overflow")
    return ~x if inv else x


_NUMBERS: dict[bytes, int] = {}  # raw field → value: owners, modes and times repeat in a layer
_NUMBERS_MAX = 4096


def parse_numeric(b: bytes) -> int:
    """Octal, or base-256 two's complement when the high bit of the first byte is set."""
    value = _NUMBERS.get(b)
    if value is None:
        value = _parse_base256(b) if b and b[0] & 0x80 else _parse_octal(b)
        if len(_NUMBERS) < _NUMBERS_MAX:
            _NUMBERS[b] = value
    return value


def _byte_sum(b: bytes) -> int:
    """Sum of the bytes of a 512-byte block, in C: adler32's first half is 1 + the sum
    (mod 65521), exact for 256 bytes at a time."""
    return (adler32(b[:256]) & 0xFFFF) + (adler32(b[256:]) & 0xFFFF) - 2


def _high_bytes(b: bytes) -> int:
    """How many bytes of `b` are >= 0x80 (counted in C: delete them and compare lengths)."""
    return len(b) - len(b.translate(None, _HIGH))


def _checksum_ok(block: bytes, chksum: int) -> bool:
    """Go's rule: the field matches the unsigned or the signed sum, the field itself as spaces."""
    field = block[148:156]
    unsigned = _byte_sum(block) - sum(field) + 8 * 32
    if chksum == unsigned:
        return True
    return chksum == unsigned - 256 * _high_bytes(block) + 256 * _high_bytes(field)


_HEADER = struct.Struct("100s8s8s8s12s12s8sB100s6s2s32s32s8s8s155s12s")


def parse_header(block: bytes) -> TarHeader:
    """Decode one 512-byte header block the way Go's reader does (format by magic)."""
    (name, mode, uid, gid, size, mtime, chksum_field, typeflag, linkname, magic, version,
     _uname, _gname, devmajor, devminor, rest, trailer) = _HEADER.unpack(block)
    try:
        chksum = _parse_octal(chksum_field)
    except LayerError:
        raise _bad("checksum field") from None
    if not _checksum_ok(block, chksum):
        raise _bad("checksum mismatch")
    hdr = TarHeader(
        _cstring(name),
        _cstring(linkname),
        typeflag,
        parse_numeric(mode),
        parse_numeric(uid),
        parse_numeric(gid),
        parse_numeric(size),
        parse_numeric(mtime) * 1_000_000_000,
    )
    if magic == b"ustar\0" or (magic == b"ustar " and version == b" \0"):
        hdr.devmajor = parse_numeric(devmajor)
        hdr.devminor = parse_numeric(devminor)
        prefix = b""
        if magic == b"ustar\0" and trailer[8:] == b"tar\0":  # star
            prefix = _cstring(block[345:476])
            hdr.atime_ns = parse_numeric(block[476:488]) * 1_000_000_000
        elif magic == b"ustar\0":
            prefix = _cstring(rest)
        elif rest[0]:  # GNU atime, ignored when malformed
            try:
                hdr.atime_ns = parse_numeric(rest[:12]) * 1_000_000_000
            except LayerError:
                hdr.atime_ns = None
        if prefix:
            hdr.name = prefix + b"/" + hdr.name
    return hdr


def parse_pax(payload: bytes) -> dict[bytes, bytes]:
    """PAX records "%d %s=%s\\n"; malformed records are an error, as in Go."""
    records: dict[bytes, bytes] = {}
    sparse: list[bytes] = []
    rest = payload
    while rest:
        sp = rest.find(b" ")
        if sp < 0 or not _DECIMAL.fullmatch(rest[:sp]):
            raise _bad("PAX record length")
        n = int(rest[:sp])
        if n < 5 or len(rest) < n or sp + 1 > n - 1:
            raise _bad("PAX record length")
        rec, nl, rest = rest[sp + 1 : n - 1], rest[n - 1 : n], rest[n:]
        eq = rec.find(b"=")
        if nl != b"\n" or eq < 0:
            raise _bad("PAX record")
        key, value = rec[:eq], rec[eq + 1 :]
        if not key or (b"\0" in value if key in (b"path", b"linkpath", b"uname", b"gname") else b"\0" in key):
            raise _bad("PAX record")
        if key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes"):
            sparse.append(value)
        else:
            records[key] = value
    if sparse:
        records[b"GNU.sparse.map"] = b",".join(sparse)
    return records


def _pax_int(value: bytes) -> int:
    if not _DECIMAL.fullmatch(value) or not -_INT64 <= int(value) < _INT64:
        raise _bad("PAX number %r" % value)
    return int(value)


def parse_pax_time(value: bytes) -> int:
    """A PAX time ("secs[.frac]") as nanoseconds since the epoch, truncated to 9 digits."""
    secs_text, dot, frac = value.partition(b".")
    secs = _pax_int(secs_text)
    if not dot or not frac:
        return secs * 1_000_000_000
    if not frac.isdigit():
        raise _bad("PAX time %r" % value)
    nanos = int((frac + b"000000000")[:9])
    return secs * 1_000_000_000 + (-nanos if secs_text.startswith(b"-") else nanos)


def merge_pax(hdr: TarHeader, records: dict[bytes, bytes], empty_xattrs: bool = False) -> None:
    """Apply PAX records to a header; empty values keep the header's own field (Go rule) and
    drop an xattr, unless `empty_xattrs` (dockerd 26 and later set it, empty)."""
    for key, value in records.items():
        if not value and not (empty_xattrs and key.startswith(b"SCHILY.xattr.")):
            continue
        if key == b"path":
            hdr.name = value
        elif key == b"linkpath":
            hdr.linkname = value
        elif key == b"uid":
            hdr.uid = _pax_int(value)
        elif key == b"gid":
            hdr.gid = _pax_int(value)
        elif key == b"size":
            hdr.size = _pax_int(value)
        elif key == b"mtime":
            hdr.mtime_ns = parse_pax_time(value)
        elif key == b"atime":
            hdr.atime_ns = parse_pax_time(value)
        elif key == b"ctime":
            parse_pax_time(value)
        elif key.startswith(b"SCHILY.xattr."):
            hdr.xattrs[key[len(b"SCHILY.xattr.") :]] = value
