"""The value encodings of containerd's bbolt databases (containerd-store-format.md §2, §3): Go's
varints (signed zigzag and unsigned) and time.Time's MarshalBinary."""

from __future__ import annotations

import time

GO_EPOCH_OFFSET = 62135596800  # seconds from 0001-01-01 to 1970-01-01 (Go's internal epoch)


def uvarint(value: int) -> bytes:
    """Go's binary.PutUvarint: 7 bits a byte, low first, the high bit set on all but the last."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint(value: int) -> bytes:
    """Go's binary.PutVarint: zigzag, then uvarint."""
    return uvarint(value << 1 if value >= 0 else (~value << 1) | 1)


def read_uvarint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """(value, offset after it); ValueError when `data` ends inside it or it exceeds 64 bits."""
    value = shift = 0
    while offset < len(data) and shift < 70:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                break
            return value, offset
        shift += 7
    raise ValueError("invalid varint")


def read_varint(data: bytes) -> int:
    """A whole value holding one zigzag varint (a size, an inode count)."""
    raw, end = read_uvarint(data)
    if end != len(data):
        raise ValueError("invalid varint")
    return raw >> 1 if not raw & 1 else ~(raw >> 1)


def go_time(nanoseconds: int | None = None) -> bytes:
    """time.Time.MarshalBinary (version 1) of a UTC time, now by default: 0x01, int64 BE seconds
    since 0001-01-01, int32 BE nanoseconds, int16 0xffff (UTC)."""
    ns = time.time_ns() if nanoseconds is None else nanoseconds
    seconds, nanos = divmod(ns, 1_000_000_000)
    return b"\x01" + (seconds + GO_EPOCH_OFFSET).to_bytes(8, "big", signed=True) + nanos.to_bytes(4, "big") + b"\xff\xff"


def read_go_time(data: bytes) -> str:
    """RFC 3339 (UTC, nanoseconds when any) of a time.MarshalBinary value (version 1 or 2, any zone
    offset: the instant is what counts); ValueError when it is not one."""
    if len(data) not in (15, 16) or data[0] not in (1, 2):
        raise ValueError("not a Go binary time")
    seconds = int.from_bytes(data[1:9], "big", signed=True) - GO_EPOCH_OFFSET
    nanos = int.from_bytes(data[9:13], "big")
    if nanos >= 1_000_000_000 or not -(1 << 40) < seconds < (1 << 40):
        raise ValueError("not a Go binary time")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return stamp + ("." + ("%09d" % nanos).rstrip("0") if nanos else "") + "Z"
