"""The bbolt on-disk codecs: page headers, meta pages, leaf and branch elements, bucket values, freelists.

Little endian throughout. Every decoder checks what it reads lies inside the bytes it was given and
raises `Corrupt` (a one-line `StoreError`) otherwise; callers add which file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from emustore.errors import StoreError

MAGIC = 0xED0CDAED
VERSION = 2
NO_FREELIST = 0xFFFFFFFFFFFFFFFF
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_FLAG = 0x01  # leaf element flag: the value is a bucket

HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
META_FIELDS = struct.Struct("<IIIIQQQQQ")  # magic, version, page size, flags, root, sequence, freelist, pgid, txid
CHECKSUM = struct.Struct("<Q")
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, ksize, pgid
BUCKET = struct.Struct("<QQ")  # root pgid (0: inline page follows), sequence
PGID = struct.Struct("<Q")
META_SIZE = META_FIELDS.size + CHECKSUM.size
MAX_COUNT = 0xFFFF  # a header count of this means the freelist's real count is its first u64
PAGE_SIZES = (4096, 512, 1024, 2048, 8192, 16384, 32768, 65536)


class Corrupt(StoreError):
    """A page or value that breaks the format; the message says where, the reader adds the file."""


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits: the meta page checksum."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


@dataclass(frozen=True)
class Header:
    """A page header: its id, kind flags, element count and number of overflow pages."""

    pgid: int
    flags: int
    count: int
    overflow: int

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> Header:
        if len(buf) < offset + HEADER.size:
            raise Corrupt("page header truncated")
        return cls(*HEADER.unpack_from(buf, offset))


@dataclass(frozen=True)
class Meta:
    """A meta page's fields: the root bucket, the freelist page, the high-water mark, the txid."""

    page_size: int
    flags: int
    root: int
    sequence: int
    freelist: int
    hwm: int
    txid: int

    @classmethod
    def decode(cls, buf: bytes) -> Meta | None:
        """The meta in a page's bytes, or None when its magic, version, checksum or page size is wrong."""
        if len(buf) < HEADER.size + META_SIZE:
            return None
        start = HEADER.size
        fields = META_FIELDS.unpack_from(buf, start)
        (checksum,) = CHECKSUM.unpack_from(buf, start + META_FIELDS.size)
        magic, version, page_size, flags, root, sequence, freelist, hwm, txid = fields
        if magic != MAGIC or version != VERSION or page_size not in PAGE_SIZES:
            return None
        if fnv1a64(buf[start : start + META_FIELDS.size]) != checksum:
            return None
        return cls(page_size, flags, root, sequence, freelist, hwm, txid)

    def encode(self, slot: int) -> bytes:
        """Meta page `slot` (0 or 1), one page long, checksum included."""
        fields = META_FIELDS.pack(
            MAGIC, VERSION, self.page_size, self.flags, self.root, self.sequence, self.freelist, self.hwm, self.txid
        )
        body = HEADER.pack(slot, META, 0, 0) + fields + CHECKSUM.pack(fnv1a64(fields))
        return body.ljust(self.page_size, b"\0")


def _slice(buf: bytes, start: int, size: int, what: str) -> bytes:
    if start < 0 or size < 0 or start + size > len(buf):
        raise Corrupt(f"{what} outside its page")
    return buf[start : start + size]


def _elements_fit(header: Header, buf: bytes, what: str) -> None:
    if HEADER.size + header.count * LEAF_ELEMENT.size > len(buf):
        raise Corrupt(f"{what} page {header.pgid}: {header.count} elements do not fit")


def decode_leaf(buf: bytes) -> list[tuple[int, bytes, bytes]]:
    """The (flags, key, value) elements of a leaf page (`buf` spans the page and its overflow)."""
    header = Header.decode(buf)
    _elements_fit(header, buf, "leaf")
    found = []
    for index in range(header.count):
        at = HEADER.size + index * LEAF_ELEMENT.size
        flags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(buf, at)
        what = f"leaf page {header.pgid} element {index}"
        key = _slice(buf, at + pos, ksize, what)
        found.append((flags, key, _slice(buf, at + pos + ksize, vsize, what)))
    return found


def decode_branch(buf: bytes) -> list[tuple[bytes, int]]:
    """The (first key, child pgid) elements of a branch page."""
    header = Header.decode(buf)
    _elements_fit(header, buf, "branch")
    found = []
    for index in range(header.count):
        at = HEADER.size + index * BRANCH_ELEMENT.size
        pos, ksize, child = BRANCH_ELEMENT.unpack_from(buf, at)
        found.append((_slice(buf, at + pos, ksize, f"branch page {header.pgid} element {index}"), child))
    return found


def decode_freelist(buf: bytes) -> list[int]:
    """The page ids of a freelist page."""
    header = Header.decode(buf)
    count, start = header.count, HEADER.size
    if count == MAX_COUNT:
        count = PGID.unpack_from(_slice(buf, start, PGID.size, "freelist count"))[0]
        start += PGID.size
    if start + count * PGID.size > len(buf):
        raise Corrupt(f"freelist page {header.pgid}: {count} ids do not fit")
    return list(struct.unpack_from("<%dQ" % count, buf, start))


def leaf_size(entries: list[tuple[int, bytes, bytes]]) -> int:
    """Bytes a leaf page holding `entries` needs (header, elements, keys, values)."""
    return HEADER.size + sum(LEAF_ELEMENT.size + len(key) + len(value) for _, key, value in entries)


def branch_size(entries: list[tuple[bytes, int]]) -> int:
    """Bytes a branch page holding `entries` needs."""
    return HEADER.size + sum(BRANCH_ELEMENT.size + len(key) for key, _ in entries)


def pages_needed(size: int, page_size: int) -> int:
    """How many pages `size` bytes span (at least one)."""
    return max(1, -(-size // page_size))


def _pad(body: bytes, page_size: int) -> bytes:
    return body.ljust(pages_needed(len(body), page_size) * page_size, b"\0")


def encode_leaf(pgid: int, entries: list[tuple[int, bytes, bytes]], page_size: int, inline: bool = False) -> bytes:
    """A leaf page (padded to whole pages, overflow set) or, `inline`, the unpadded page of an inline bucket."""
    size = leaf_size(entries)
    overflow = 0 if inline else pages_needed(size, page_size) - 1
    elements, data = bytearray(), bytearray()
    data_start = HEADER.size + len(entries) * LEAF_ELEMENT.size
    for index, (flags, key, value) in enumerate(entries):
        at = HEADER.size + index * LEAF_ELEMENT.size
        elements += LEAF_ELEMENT.pack(flags, data_start + len(data) - at, len(key), len(value))
        data += key + value
    body = HEADER.pack(pgid, LEAF, len(entries), overflow) + elements + data
    return bytes(body) if inline else _pad(bytes(body), page_size)


def encode_branch(pgid: int, entries: list[tuple[bytes, int]], page_size: int) -> bytes:
    """A branch page, padded to whole pages."""
    size = branch_size(entries)
    elements, data = bytearray(), bytearray()
    data_start = HEADER.size + len(entries) * BRANCH_ELEMENT.size
    for index, (key, child) in enumerate(entries):
        at = HEADER.size + index * BRANCH_ELEMENT.size
        elements += BRANCH_ELEMENT.pack(data_start + len(data) - at, len(key), child)
        data += key
    body = HEADER.pack(pgid, BRANCH, len(entries), pages_needed(size, page_size) - 1) + elements + data
    return _pad(bytes(body), page_size)


def freelist_size(count: int) -> int:
    """Bytes a freelist page of `count` ids needs."""
    return HEADER.size + (count + (1 if count >= MAX_COUNT else 0)) * PGID.size


def encode_freelist(pgid: int, ids: list[int], page_size: int) -> bytes:
    """A freelist page listing `ids` (sorted by the caller), padded to whole pages."""
    size = freelist_size(len(ids))
    overflow = pages_needed(size, page_size) - 1
    if len(ids) >= MAX_COUNT:
        head = HEADER.pack(pgid, FREELIST, MAX_COUNT, overflow) + PGID.pack(len(ids))
    else:
        head = HEADER.pack(pgid, FREELIST, len(ids), overflow)
    return _pad(head + struct.pack("<%dQ" % len(ids), *ids), page_size)


def decode_bucket(value: bytes) -> tuple[int, int, bytes]:
    """A bucket value: (root pgid, sequence, inline page bytes: empty unless root is 0)."""
    if len(value) < BUCKET.size:
        raise Corrupt("bucket value shorter than its header")
    root, sequence = BUCKET.unpack_from(value)
    inline = value[BUCKET.size :]
    if root == 0 and len(inline) < HEADER.size:
        raise Corrupt("inline bucket without its page")
    return root, sequence, inline if root == 0 else b""


def encode_bucket(root: int, sequence: int, inline: bytes = b"") -> bytes:
    """A bucket value; `inline` is the page that follows when root is 0."""
    return BUCKET.pack(root, sequence) + inline
