"""The bbolt codecs and page layout: encodings decode back, checksums catch changes, cuts fit pages."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emustore.bbolt.layout import Allocator, inline_value, split_branch, split_leaf
from emustore.bbolt.pages import (
    BUCKET_FLAG,
    LEAF,
    MAX_COUNT,
    Corrupt,
    Header,
    Meta,
    decode_branch,
    decode_bucket,
    decode_freelist,
    decode_leaf,
    encode_branch,
    encode_bucket,
    encode_freelist,
    encode_leaf,
    fnv1a64,
    leaf_size,
)
from tests.support.bboltmodel import CI_INPUTS

ELEMENTS = st.lists(st.tuples(st.sampled_from([0, BUCKET_FLAG]), st.binary(min_size=1, max_size=50), st.binary(max_size=6000)), max_size=30)


def test_fnv1a64_known_vectors() -> None:
    # the published FNV-1a 64-bit test vectors
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_meta_round_trip_and_checksum() -> None:
    meta = Meta(4096, 0, 13, 7, 14, 15, 11)
    page = meta.encode(1)
    assert len(page) == 4096
    assert Header.decode(page) == Header(1, 0x04, 0, 0)
    assert Meta.decode(page) == meta
    for offset in range(16, 16 + 64):
        changed = bytearray(page)
        changed[offset] ^= 0x01
        assert Meta.decode(bytes(changed)) is None, offset


def test_meta_of_a_real_containerd_file_layout() -> None:
    # the 2.1 meta seen on disk: no freelist, its checksum as containerd wrote it
    fields = struct.pack("<IIIIQQQQQ", 0xED0CDAED, 2, 4096, 0, 8, 0, 0xFFFFFFFFFFFFFFFF, 13, 10)
    page = struct.pack("<QHHI", 0, 4, 0, 0) + fields + struct.pack("<Q", 6240100953496112892)
    assert Meta.decode(page) == Meta(4096, 0, 8, 0, 0xFFFFFFFFFFFFFFFF, 13, 10)


@settings(max_examples=80, deadline=None, derandomize=CI_INPUTS)
@given(ELEMENTS.map(lambda found: sorted({key: (flags, key, value) for flags, key, value in found}.values(), key=lambda e: e[1])))
def test_leaf_round_trip(elements: list[tuple[int, bytes, bytes]]) -> None:
    page = encode_leaf(9, elements, 4096)
    assert len(page) % 4096 == 0 and len(page) >= leaf_size(elements)
    header = Header.decode(page)
    assert (header.pgid, header.flags, header.count, header.overflow) == (9, LEAF, len(elements), len(page) // 4096 - 1)
    assert decode_leaf(page) == elements
    assert decode_leaf(encode_leaf(0, elements, 4096, inline=True)) == elements


def test_branch_and_bucket_round_trip() -> None:
    children = [(b"a", 5), (b"m" * 300, 77), (b"z", 2**40)]
    assert decode_branch(encode_branch(3, children, 4096)) == children
    assert decode_bucket(encode_bucket(12, 99)) == (12, 99, b"")
    inline = encode_leaf(0, [(0, b"k", b"v")], 4096, inline=True)
    assert decode_bucket(encode_bucket(0, 5, inline)) == (0, 5, inline)
    with pytest.raises(Corrupt):
        decode_bucket(encode_bucket(0, 5))
    with pytest.raises(Corrupt):
        decode_bucket(b"\0" * 15)


@pytest.mark.parametrize("count", [0, 1, MAX_COUNT - 1, MAX_COUNT, MAX_COUNT + 5])
def test_freelist_round_trip_with_the_large_count_form(count: int) -> None:
    ids = list(range(2, 2 + count))
    page = encode_freelist(4, ids, 4096)
    assert decode_freelist(page) == ids
    assert (Header.decode(page).count == MAX_COUNT) == (count >= MAX_COUNT)


def test_leaf_element_outside_its_page_is_corrupt() -> None:
    page = bytearray(encode_leaf(2, [(0, b"key", b"value")], 4096))
    struct.pack_into("<IIII", page, 16, 0, 4090, 3, 5)
    with pytest.raises(Corrupt, match="outside its page"):
        decode_leaf(bytes(page))
    struct.pack_into("<QHHI", page, 0, 2, LEAF, 300, 0)
    with pytest.raises(Corrupt, match="do not fit"):
        decode_leaf(bytes(page))


def test_split_leaf_fills_pages_and_isolates_large_values() -> None:
    elements = [(0, b"k%04d" % index, b"v" * 100) for index in range(200)] + [(0, b"z", b"x" * 10000)]
    chunks = split_leaf(elements, 4096)
    assert [element for chunk in chunks for element in chunk] == elements
    assert all(leaf_size(chunk) <= 4096 for chunk in chunks[:-1])
    assert chunks[-1] == [(0, b"z", b"x" * 10000)]
    assert split_leaf([], 4096) == [[]]
    children = [(b"k" * 100 + b"%04d" % index, index) for index in range(100)]
    assert sum(split_branch(children, 4096), []) == children
    assert [len(chunk) for chunk in split_branch(children, 4096)] == [34, 34, 32]  # (4096 - 16) // (16 + 104)


def test_inline_only_small_buckets_without_sub_buckets() -> None:
    small = [(0, b"a", b"b")]
    value = inline_value(small, 3, 4096)
    assert value is not None and decode_bucket(value)[:2] == (0, 3)
    assert inline_value([(BUCKET_FLAG, b"a", encode_bucket(0, 0, encode_leaf(0, [], 4096, True)))], 0, 4096) is None
    assert inline_value([(0, b"a", b"x" * 1100)], 0, 4096) is None


def test_allocator_takes_runs_then_appends() -> None:
    allocator = Allocator([9, 2, 3, 5, 6, 7], 12)
    assert allocator.take(3) == 5
    assert allocator.take(2) == 2
    assert allocator.take(2) == 12
    assert allocator.take(1) == 9
    assert allocator.take(1) == 14
    assert (allocator.free, allocator.hwm) == ([], 15)
