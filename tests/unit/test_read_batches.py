"""Batched decompression keeps Go's read cuts recoverable: chunks are runs of whole 32 KiB reads."""

from __future__ import annotations

import gzip
import random

import zstandard

from emustore.layers.compression import BATCH, READ_WINDOW, Decompressed
from emustore.layers.prefetch import Prefetched
from emustore.layers.tarstream import ByteStream


def go_reads(chunks: list[bytes]) -> list[int]:
    """Cut every chunk at each READ_WINDOW from its start: the read sizes Go would have seen."""
    sizes = []
    for chunk in chunks:
        sizes += [min(READ_WINDOW, len(chunk) - start) for start in range(0, len(chunk), READ_WINDOW)]
    return sizes


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_gzip_members_are_cut_at_each_window_and_member_end() -> None:
    rng = random.Random(7)
    first, second = rng.randbytes(3 * BATCH + 5000), rng.randbytes(40000)
    blob = gzip.compress(first, mtime=0) + gzip.compress(second, mtime=0)
    chunks = list(Decompressed(iter(pieces(blob, 100_000))))
    assert b"".join(chunks) == first + second
    expected = [READ_WINDOW] * (len(first) // READ_WINDOW) + [len(first) % READ_WINDOW]
    expected += [READ_WINDOW, len(second) - READ_WINDOW]
    assert go_reads(chunks) == expected
    assert len(chunks) < len(expected)  # batched: several reads per chunk


def test_plain_and_zstd_are_cut_at_stream_windows() -> None:
    data = random.Random(8).randbytes(2 * BATCH + 12345)
    for blob in (data, zstandard.ZstdCompressor().compress(data)):
        chunks = list(Decompressed(iter(pieces(blob, 77_777))))
        assert b"".join(chunks) == data
        assert go_reads(chunks) == [len(p) for p in pieces(data, READ_WINDOW)]


def test_rest_cuts_the_tail_at_windows_from_each_chunk_start() -> None:
    stream = ByteStream(iter([bytes(100_000), bytes(40_000)]), lambda chunk: None)
    assert len(stream.read(70_000)) == 70_000
    assert [len(p) for p in stream.rest(READ_WINDOW)] == [98304 - 70_000, 100_000 - 98304, 32768, 40_000 - 32768]
    assert stream.offset == 140_000


def test_rest_without_window_hands_out_whole_chunks() -> None:
    stream = ByteStream(iter([b"abcdef", b"gh"]), lambda chunk: None)
    stream.read(2)
    assert list(stream.rest()) == [b"cdef", b"gh"]


def test_prefetched_raises_the_producers_error_in_the_consumer() -> None:
    def failing():
        yield b"one"
        raise ValueError("broken download")

    ahead = Prefetched(failing())
    got = []
    try:
        for chunk in ahead:
            got.append(chunk)
    except ValueError as exc:
        assert str(exc) == "broken download"
    else:
        raise AssertionError("the producer's error was lost")
    finally:
        ahead.close()
    assert got == [b"one"]


def test_prefetched_close_stops_an_endless_producer() -> None:
    def endless():
        while True:
            yield b"x"

    ahead = Prefetched(endless(), depth=2)
    assert next(iter(ahead)) == b"x"
    ahead.close()  # returns: the producer saw the stop
