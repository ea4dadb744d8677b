"""The bbolt writer: random transactions read back equal to a Python model, with a freelist or
without; copy-on-write (the previous state survives a crash between data and meta, a torn meta,
a SIGKILL anywhere); the flock; the API's refusals."""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emustore.bbolt.pages import NO_FREELIST, Meta, encode_freelist, encode_leaf
from emustore.bbolt.reader import MAX_DEPTH, dump, open_db
from emustore.bbolt.writer import Transaction, update
from emustore.errors import StoreError
from tests.support.bboltmodel import CI_INPUTS, TRANSACTIONS, empty, new_db, run
from tests.support.figures import record

SETTINGS = settings(max_examples=40, deadline=None, derandomize=CI_INPUTS, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_pages(path: Path, freelist: bool) -> None:
    """The file covers its pages; the freelist (if any) lists exactly the pages nothing references."""
    with open_db(path) as db:
        assert db.file_size >= db.meta.hwm * db.page_size
        listed = db.freelist()
        assert (listed is not None) == freelist
        if listed is not None:
            assert listed == db.free_pages()
        else:
            assert db.meta.freelist == NO_FREELIST


@SETTINGS
@given(transactions=TRANSACTIONS, freelist=st.booleans())
def test_random_transactions_read_back_as_the_model(tmp_path: Path, transactions: list, freelist: bool) -> None:  # type: ignore[type-arg]
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "db"
    model = new_db(path, freelist)
    final = run(path, model, transactions)[-1]
    assert dump(path) == final
    _check_pages(path, freelist)
    with open_db(path) as db:
        assert 1 <= db.meta.txid <= 1 + len(transactions)  # one txid per transaction that changed something
    path.unlink()


def test_every_committed_state_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "db"
    model = new_db(path)
    transactions = [
        [("create", (), b"v1", b""), ("bulk", (b"v1",), b"a", 2000)],
        [("put", (b"v1", b"a"), b"k000100", b"x" * 20000), ("delete", (b"v1", b"a"), b"k000007", b"")],
        [("sequence", (b"v1",), b"", 7), ("create", (b"v1",), b"b", b""), ("delete_bucket", (b"v1",), b"a", b"")],
    ]
    states = run(path, model, [])
    for transaction in transactions:
        states = run(path, states[-1], [transaction])
        assert dump(path) == states[-1]
        _check_pages(path, True)
    assert dump(path)["buckets"][b"v1"]["sequence"] == 7


def test_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    new_db(path)
    before = path.read_bytes()
    with update(path) as root:
        assert root.bucket(b"none") is None
    assert path.read_bytes() == before


def test_crash_between_data_and_meta_leaves_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db"
    states = run(path, new_db(path), [[("create", (), b"v1", b""), ("bulk", (b"v1",), b"a", 500)]])

    def crash(self: Transaction, meta: object) -> None:
        raise KeyboardInterrupt("killed before the meta page")

    monkeypatch.setattr(Transaction, "_write_meta", crash)
    with pytest.raises(KeyboardInterrupt):
        with update(path) as root:
            bucket = root.bucket(b"v1")
            assert bucket is not None
            bucket.delete_bucket(b"a")
            bucket.create_bucket(b"b").put(b"k", b"v" * 9000)
    assert path.stat().st_size > 0
    assert dump(path) == states[-1]
    _check_pages(path, True)


def test_torn_meta_write_falls_back_to_the_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "db"
    before = run(path, new_db(path), [[("create", (), b"v1", b""), ("bulk", (b"v1",), b"a", 300)]])[-1]
    with open_db(path) as db:
        slot = (db.meta.txid + 1) % 2
        page_size = db.page_size
    previous = path.read_bytes()[slot * page_size : (slot + 1) * page_size]
    run(path, before, [[("bulk", (b"v1",), b"b", 300)]])
    written = path.read_bytes()[slot * page_size : (slot + 1) * page_size]
    torn = 0
    for cut in range(1, 80):
        with open(path, "r+b") as file:
            file.seek(slot * page_size)
            file.write(written[:cut] + previous[cut:])
        if written[:cut] + previous[cut:] not in (written, previous):
            assert dump(path) == before, cut
            torn += 1
    record("bbolt torn meta", cuts=torn)
    assert torn >= 40


def _child_commits(path: Path, count: int) -> None:
    """In a forked child: commit `count` transactions, each putting key `sequence` and counting it."""
    try:
        for _ in range(count):
            with update(path) as root:
                bucket = root.create_bucket_if_not_exists(b"b")
                index = bucket.sequence
                bucket.put(b"%06d" % index, b"x" * (index * 37 % 9000))
                bucket.sequence = index + 1
    finally:
        os._exit(0)


def test_sigkill_at_any_point_leaves_a_committed_state(tmp_path: Path) -> None:
    path = tmp_path / "db"
    new_db(path)
    rng = random.Random(17)
    kills = progressed = 0
    for trial in range(25):
        before = dump(path)
        pid = os.fork()
        if pid == 0:
            _child_commits(path, 200)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        after = dump(path)  # any torn write would raise or give a state that is no prefix
        bucket = after["buckets"].get(b"b", {"sequence": 0, "values": {}, "buckets": {}})
        # each committed transaction added key n and set the sequence to n + 1: whole or nothing
        assert bucket["values"] == {b"%06d" % index: b"x" * (index * 37 % 9000) for index in range(bucket["sequence"])}
        progressed += after != before
        _check_pages(path, True)
    record("bbolt sigkill", kills=kills, changed_states=progressed, broken=0)
    assert progressed > 0


def test_a_held_lock_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db"
    new_db(path)
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="locked by another process") as raised:
            with update(path):
                pass
        with pytest.raises(StoreError, match="locked"):
            dump(path)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda root: root.put(b"k", b"v"), "only buckets"),
        (lambda root: root.create_bucket(b"b").put(b"", b"v"), "bbolt key of 0 bytes"),
        (lambda root: root.create_bucket(b"b").put(b"k" * 32769, b"v"), "32769 bytes"),
        (lambda root: (root.create_bucket(b"b"), root.create_bucket(b"b")), "the name exists"),
        (lambda root: root.delete_bucket(b"none"), "no such bucket"),
        (lambda root: root.create_bucket(b"b").create_bucket(b"c") and root.bucket(b"b").put(b"c", b"v"), "is a bucket"),  # type: ignore[union-attr]
        (lambda root: root.create_bucket(b"b").create_bucket(b"c") and root.bucket(b"b").delete(b"c"), "is a bucket"),  # type: ignore[union-attr]
        (lambda root: setattr(root.create_bucket(b"b"), "sequence", 1 << 64), "out of range"),
        (lambda root: functools.reduce(lambda bucket, _: bucket.create_bucket(b"n"), range(MAX_DEPTH + 1), root), "nest at most"),
    ],
)
def test_invalid_changes_are_refused_and_nothing_is_written(tmp_path: Path, action: object, message: str) -> None:
    path = tmp_path / "db"
    new_db(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=message):
        with update(path) as root:
            assert callable(action)
            action(root)
    assert path.read_bytes() == before


def test_new_database_is_complete_or_absent(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with update(path, create=True, mode=0o600) as root:
        root.create_bucket(b"v1").put(b"version", b"\x08")
    assert path.stat().st_mode & 0o777 == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["new.db"]
    assert dump(path) == {"sequence": 0, "values": {}, "buckets": {b"v1": {"sequence": 0, "values": {b"version": b"\x08"}, "buckets": {}}}}
    with pytest.raises(StoreError, match="cannot open"):
        with update(tmp_path / "missing.db"):
            pass


@SETTINGS
@given(transactions=TRANSACTIONS, crashed=TRANSACTIONS, freelist=st.booleans())
def test_a_crash_before_the_meta_page_keeps_the_last_commit(
    tmp_path: Path, transactions: list, crashed: list, freelist: bool  # type: ignore[type-arg]
) -> None:
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "db"
    final = run(path, new_db(path, freelist), transactions)[-1]

    def crash(self: Transaction, meta: object) -> None:
        raise KeyboardInterrupt("killed before the meta page")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Transaction, "_write_meta", crash)
        try:
            run(path, final, crashed[:1])
        except KeyboardInterrupt:
            pass
    assert dump(path) == final
    _check_pages(path, freelist)
    after = run(path, final, crashed[1:])[-1]
    assert dump(path) == after


@pytest.mark.parametrize("page_size", [1024, 16384])
def test_other_page_sizes(tmp_path: Path, page_size: int) -> None:
    path = tmp_path / "db"
    with open(path, "wb") as file:  # a new file as bbolt makes it, with this page size
        for txid in (0, 1):
            file.write(Meta(page_size, 0, 3, 0, 2, 4, txid).encode(txid))
        file.write(encode_freelist(2, [], page_size) + encode_leaf(3, [], page_size))
    transactions = [
        [("bulk", (b"a",), b"b", 900), ("put", (b"a",), b"large", b"x" * 3 * page_size), ("sequence", (b"a",), b"", 5)],
        [("delete_bucket", (b"a",), b"b", b""), ("bulk", (b"c",), b"d", 50)],
    ]
    final = run(path, empty(), transactions)[-1]
    assert dump(path) == final
    _check_pages(path, True)
    with open_db(path) as db:
        assert db.page_size == page_size


def test_next_sequence_counts_from_the_stored_sequence(tmp_path: Path) -> None:
    path = tmp_path / "db"
    new_db(path)
    with update(path) as root:
        root.create_bucket(b"s").sequence = 41
    with update(path) as root:
        bucket = root.bucket(b"s")
        assert bucket is not None and [bucket.next_sequence(), bucket.next_sequence()] == [42, 43]
    assert dump(path)["buckets"][b"s"]["sequence"] == 43


def test_a_failing_write_is_one_line_and_keeps_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db"
    before = run(path, new_db(path), [[("bulk", (b"v1",), b"a", 200)]])[-1]
    written = []
    real_pwrite = os.pwrite

    def full_disk(fd: int, data: bytes, offset: int) -> int:
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr("emustore.bbolt.writer.os.pwrite", full_disk)
    with pytest.raises(StoreError, match="No space left on device"):
        with update(path) as root:
            root.create_bucket(b"v2").put(b"k", b"v" * 30000)
    monkeypatch.undo()
    assert written and dump(path) == before
