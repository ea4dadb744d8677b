"""The bbolt reader on hostile and corrupt files: one-line StoreError, never another exception, an
endless walk or an unbounded read; the meta choice (higher txid, else the other); lookups."""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emustore.bbolt.pages import (
    BUCKET_FLAG,
    NO_FREELIST,
    Meta,
    encode_branch,
    encode_bucket,
    encode_freelist,
    encode_leaf,
)
from emustore.bbolt.reader import MAX_DEPTH, MAX_SPAN, dump, open_db
from emustore.bbolt.writer import update
from emustore.errors import StoreError
from tests.support.bboltmodel import CI_INPUTS, new_db
from tests.support.figures import module_figures

PAGE = 4096
FIGURES = {"cases": 0, "store_errors": 0, "read_whole": 0, "other_exceptions": 0}


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    assert figures["other_exceptions"] == 0
    if selected.get("test_fuzzed_files_fail_in_one_line_or_read"):
        assert figures["store_errors"] > 0 and figures["read_whole"] > 0


_figures = module_figures("bbolt hostile files", FIGURES, _check_figures)


def _file(path: Path, pages: dict[int, bytes], root: int, hwm: int, freelist: int = NO_FREELIST, txids: tuple[int, int] = (0, 1)) -> Path:
    """A database made of these pages (ids patched in by the encoders) and two metas."""
    with open(path, "wb") as file:
        for slot in (0, 1):
            file.write(Meta(PAGE, 0, root, 0, freelist, hwm, txids[slot]).encode(slot))
        for pgid in range(2, hwm):
            file.write(pages.get(pgid, b"\0" * PAGE))
    return path


def _leaf(pgid: int, elements: list[tuple[int, bytes, bytes]]) -> bytes:
    return encode_leaf(pgid, elements, PAGE)


def _one_line_error(path: Path) -> str:
    with pytest.raises(StoreError) as raised:
        dump(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message or "cannot open" in message
    return message


def _bucket(root: int) -> bytes:
    return encode_bucket(root, 0)


CASES = {
    "cycle": (
        {2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: encode_branch(3, [(b"k", 3)], PAGE)},
        "reached twice|deeper",
    ),
    "shared page": (
        {2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3)), (BUCKET_FLAG, b"b", _bucket(3))]), 3: _leaf(3, [(0, b"k", b"v")])},
        "reached twice",
    ),
    "bucket root is the root": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(2))])}, "reached twice"),
    "page id past the high-water mark": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(99))])}, "out of range"),
    "bucket root is a meta page": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(1))])}, "out of range"),
    "header of another page": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: _leaf(4, [])}, "header says page 4"),
    "freelist where a leaf belongs": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: encode_freelist(3, [], PAGE)}, "flags 0x10"),
    "keys out of order": ({2: _leaf(2, [(BUCKET_FLAG, b"b", _bucket(3))]), 3: _leaf(3, [(0, b"z", b""), (0, b"a", b"")])}, "order"),
    "duplicate keys": ({2: _leaf(2, [(BUCKET_FLAG, b"b", _bucket(3))]), 3: _leaf(3, [(0, b"a", b""), (0, b"a", b"")])}, "order"),
    "empty branch": ({2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: encode_branch(3, [], PAGE)}, "empty"),
    "short bucket value": ({2: _leaf(2, [(BUCKET_FLAG, b"a", b"\0" * 9)])}, "shorter"),
    "inline bucket without a page": ({2: _leaf(2, [(BUCKET_FLAG, b"a", encode_bucket(0, 0))])}, "without its page"),
    "inline page of a branch": ({2: _leaf(2, [(BUCKET_FLAG, b"a", encode_bucket(0, 0, encode_branch(0, [], PAGE)[:16]))])}, "inline bucket page"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_trees_fail_in_one_line(tmp_path: Path, case: str) -> None:
    pages, pattern = CASES[case]
    path = _file(tmp_path / "db", pages, 2, 5)
    FIGURES["cases"] += 1
    assert re.search(pattern, _one_line_error(path)), case
    FIGURES["store_errors"] += 1
    with pytest.raises(StoreError):
        with update(path):
            pass


def _patched(path: Path, offset: int, data: bytes) -> Path:
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(data)
    return path


def test_broken_pages_and_metas(tmp_path: Path) -> None:
    good = _file(tmp_path / "good", {2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: _leaf(3, [(0, b"k", b"v")])}, 2, 5)
    assert dump(good)["buckets"][b"a"]["values"] == {b"k": b"v"}
    cases = {
        "element outside": (3 * PAGE + 16, struct.pack("<IIII", 0, 5000, 1, 1), "outside its page"),
        "too many elements": (3 * PAGE + 10, struct.pack("<H", 300), "do not fit"),
        "overflow past the mark": (3 * PAGE + 12, struct.pack("<I", 7), "overflow"),
        "both metas bad": (16, b"\0" * 4 + bytes(PAGE - 4) + b"\0" * 16 + b"\0" * 4, "no valid meta"),
    }
    for name, (offset, data, pattern) in cases.items():
        path = shutil.copy(good, tmp_path / name)
        FIGURES["cases"] += 1
        assert pattern in _one_line_error(_patched(Path(path), offset, data)), name
        FIGURES["store_errors"] += 1
    short = tmp_path / "short"
    short.write_bytes(good.read_bytes()[: 4 * PAGE])
    assert "pages in use" in _one_line_error(short)
    for content in (b"", b"x", b"\0" * PAGE * 3):
        (tmp_path / "tiny").write_bytes(content)
        assert "no valid meta" in _one_line_error(tmp_path / "tiny")
    (tmp_path / "link").symlink_to(good)
    assert "cannot open" in _one_line_error(tmp_path / "link")
    assert "cannot open" in _one_line_error(tmp_path)


def test_meta_choice_higher_valid_txid_else_the_other(tmp_path: Path) -> None:
    pages = {2: _leaf(2, [(BUCKET_FLAG, b"old", _bucket(0) + encode_leaf(0, [], PAGE, True))]),
             3: _leaf(3, [(BUCKET_FLAG, b"new", _bucket(0) + encode_leaf(0, [], PAGE, True))])}
    path = _file(tmp_path / "db", pages, 2, 4, txids=(5, 4))
    with open(path, "r+b") as file:  # meta 0 (txid 5) names the new root, meta 1 (txid 4) the old
        file.write(Meta(PAGE, 0, 3, 0, NO_FREELIST, 4, 5).encode(0))
    assert list(dump(path)["buckets"]) == [b"new"]
    _patched(path, 16 + 60, b"\xff")  # meta 0's checksum
    assert list(dump(path)["buckets"]) == [b"old"]


def test_nesting_deeper_than_the_bound_is_refused(tmp_path: Path) -> None:
    value = encode_bucket(0, 0, encode_leaf(0, [], PAGE, True))
    for _ in range(MAX_DEPTH + 2):
        value = encode_bucket(0, 0, encode_leaf(0, [(BUCKET_FLAG, b"n", value)], PAGE, True))
    path = _file(tmp_path / "db", {2: _leaf(2, [(BUCKET_FLAG, b"n", value)])}, 2, 3)
    assert "nested deeper" in _one_line_error(path)


def test_lookups_through_branch_pages_and_inline_buckets(tmp_path: Path) -> None:
    path = tmp_path / "db"
    new_db(path)
    with update(path) as root:
        big = root.create_bucket(b"big")
        for index in range(3000):
            big.put(b"%05d" % index, b"%d" % index)
        big.create_bucket(b"sub").put(b"x", b"y")
        big.sequence = 9
        root.create_bucket(b"small").put(b"k", b"v")
    with open_db(path) as db:
        big_read = db.root.bucket(b"big")
        small = db.root.bucket(b"small")
        assert big_read is not None and small is not None and small.root == 0
        assert db.page(big_read.root, 0x03)[0].flags == 0x01  # split into leaves under a branch page
        assert [big_read.get(b"%05d" % index) for index in (0, 1234, 2999)] == [b"0", b"1234", b"2999"]
        assert big_read.get(b"sub") is None and big_read.get(b"99999") is None and big_read.bucket(b"00001") is None
        assert list(big_read.buckets()) == [b"sub"] and big_read.sequence == 9
        sub = big_read.bucket(b"sub")
        assert sub is not None and list(sub.items()) == [(b"x", b"y")]
        keys = [key for key, _ in big_read.items()]
        assert keys == sorted(keys) and len(keys) == 3000
        assert small.get(b"k") == b"v"


def _sample_db(path: Path) -> Path:
    new_db(path)
    with update(path) as root:
        v1 = root.create_bucket(b"v1")
        v1.put(b"version", b"\x08")
        for space in range(3):
            namespace = v1.create_bucket(b"ns%d" % space)
            labels = namespace.create_bucket(b"labels")
            for index in range(40 * space):
                labels.put(b"label-%04d" % index, b"value" * index)
            namespace.sequence = space
        v1.create_bucket(b"big").put(b"blob", b"b" * 9000)
    with update(path) as root:  # a second commit: free pages and a longer freelist
        bucket = root.bucket(b"v1")
        assert bucket is not None
        bucket.delete_bucket(b"ns1")
    return path


SAMPLE: dict[str, bytes] = {}


@settings(max_examples=150, deadline=None, derandomize=CI_INPUTS, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(st.tuples(st.integers(0, 16 * PAGE), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 16 * PAGE)),
    headers=st.booleans(),
)
def test_fuzzed_files_fail_in_one_line_or_read(tmp_path: Path, changes: list[tuple[int, bytes]], cut: int | None, headers: bool) -> None:
    if not SAMPLE:
        SAMPLE["db"] = _sample_db(tmp_path / "sample").read_bytes()
    data = bytearray(SAMPLE["db"])
    for offset, patch in changes:
        if headers:  # aim at page headers and the elements that follow them
            offset = (offset // PAGE) * PAGE + offset % 64
        data[offset : offset + len(patch)] = patch
    path = tmp_path / "fuzzed"
    path.write_bytes(bytes(data[:cut] if cut is not None else data))
    FIGURES["cases"] += 1
    try:
        dump(path)
        with open_db(path) as db:
            db.free_pages()
            db.freelist()
            bucket = db.root.bucket(b"v1")
            if bucket is not None:
                bucket.get(b"version")
                list(bucket.items())
        with update(path) as root:
            root.create_bucket_if_not_exists(b"v1").put(b"fuzz", b"x")
        dump(path)
        FIGURES["read_whole"] += 1
    except StoreError as error:
        assert "\n" not in str(error)
        FIGURES["store_errors"] += 1
    except Exception:
        FIGURES["other_exceptions"] += 1
        raise


def test_no_single_read_is_unbounded(tmp_path: Path) -> None:
    # a sparse file past 256 MiB whose second page claims nearly all of it as overflow
    hwm = (MAX_SPAN // PAGE) + 10
    page = bytearray(_leaf(3, [(0, b"k", b"v")]))
    struct.pack_into("<I", page, 12, hwm - 5)
    path = _file(tmp_path / "db", {2: _leaf(2, [(BUCKET_FLAG, b"a", _bucket(3))]), 3: bytes(page)}, 2, 4)
    with open(path, "r+b") as file:
        for slot in (0, 1):
            file.seek(slot * PAGE)
            file.write(Meta(PAGE, 0, 2, 0, NO_FREELIST, hwm, slot).encode(slot))
        file.truncate(hwm * PAGE)
    FIGURES["cases"] += 1
    assert "more than" in _one_line_error(path)
    FIGURES["store_errors"] += 1
