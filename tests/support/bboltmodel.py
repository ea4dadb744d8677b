"""A Python model of a bbolt database (the shape `emustore.bbolt.reader.dump` gives) and random
operations applied alike to it and to a write transaction, for the property tests."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from hypothesis import strategies as st

from emustore.bbolt.pages import NO_FREELIST, Meta
from emustore.bbolt.reader import BucketDump, open_db
from emustore.bbolt.writer import WriteBucket, update

CI_INPUTS = os.environ.get("CI") == "true"  # hypothesis: the same inputs every CI run (derandomize)

NAMES = st.sampled_from([b"a", b"b", b"c", b"v1", b"\x00", b"\xff", b"a\x00", b"ab"])
KEYS = st.one_of(NAMES, st.binary(min_size=1, max_size=40), st.binary(min_size=200, max_size=1500))
VALUES = st.one_of(st.binary(max_size=30), st.binary(min_size=1000, max_size=9000))
PATHS = st.lists(st.sampled_from([b"a", b"b", b"v1"]), max_size=3).map(tuple)  # often existing buckets

# an operation: (kind, bucket path, key or name, value or number)
OPERATIONS = st.one_of(
    st.tuples(st.just("create"), PATHS, NAMES, st.just(b"")),
    st.tuples(st.just("create"), PATHS, st.sampled_from([b"a", b"b", b"v1"]), st.just(b"")),
    st.tuples(st.just("put"), PATHS, KEYS, VALUES),
    st.tuples(st.just("delete"), PATHS, KEYS, st.just(b"")),
    st.tuples(st.just("delete_bucket"), PATHS, NAMES, st.just(b"")),
    st.tuples(st.just("sequence"), PATHS, st.just(b""), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("bulk"), PATHS, NAMES, st.integers(1, 600)),
)
TRANSACTIONS = st.lists(st.lists(OPERATIONS, max_size=20), min_size=1, max_size=5)


def empty() -> BucketDump:
    return {"sequence": 0, "values": {}, "buckets": {}}


def new_db(path: Path, freelist: bool = True) -> BucketDump:
    """A new, empty database at `path` (written by our writer); `freelist=False` then rewrites both
    metas as containerd 2.x leaves them (freelist pgid 0xffffffffffffffff). Returns its model."""
    assert not path.exists()
    with update(path, create=True):
        pass
    if not freelist:
        with open_db(path) as db:
            meta = db.meta
        with open(path, "r+b") as file:
            for slot in (0, 1):
                file.seek(slot * meta.page_size)
                file.write(Meta(meta.page_size, 0, meta.root, 0, NO_FREELIST, meta.hwm, slot).encode(slot))
    return empty()


def _model_bucket(model: BucketDump, path: tuple[bytes, ...]) -> BucketDump | None:
    """The bucket at `path`, made along the way (None when a plain key is in the way)."""
    for name in path:
        if name in model["values"]:
            return None
        model = model["buckets"].setdefault(name, empty())
    return model


def _write_bucket(root: WriteBucket, path: tuple[bytes, ...]) -> WriteBucket:
    bucket = root
    for name in path:
        bucket = bucket.create_bucket_if_not_exists(name)
    return bucket


def apply(model: BucketDump, root: WriteBucket, operation: tuple[str, tuple[bytes, ...], bytes, object]) -> None:
    """Apply one operation to the model and the transaction alike, its bucket path made first;
    an operation that is not valid there is applied to neither."""
    kind, path, key, argument = operation
    target = _model_bucket(model, path)
    if target is None:
        return
    bucket = _write_bucket(root, path)
    if kind == "create" and key not in target["values"]:
        target["buckets"].setdefault(key, empty())
        bucket.create_bucket_if_not_exists(key)
    elif kind == "put" and path and key not in target["buckets"]:
        assert isinstance(argument, bytes)
        target["values"][key] = argument
        bucket.put(key, argument)
    elif kind == "delete" and key not in target["buckets"]:
        target["values"].pop(key, None)
        bucket.delete(key)
    elif kind == "delete_bucket" and key in target["buckets"]:
        del target["buckets"][key]
        bucket.delete_bucket(key)
    elif kind == "sequence":
        assert isinstance(argument, int)
        target["sequence"] = argument
        bucket.sequence = argument
    elif kind == "bulk" and path and key not in target["values"]:
        assert isinstance(argument, int)
        target["buckets"].setdefault(key, empty())
        sub = bucket.create_bucket_if_not_exists(key)
        for index in range(argument):
            name, value = b"k%06d" % index, b"v" * (index % 97)
            target["buckets"][key]["values"][name] = value
            sub.put(name, value)


def run(path: Path, model: BucketDump, transactions: list[list[tuple[str, tuple[bytes, ...], bytes, object]]]) -> list[BucketDump]:
    """Commit each transaction in turn on the database `model` describes (left unchanged); the model
    after each (the first: before any)."""
    model = copy.deepcopy(model)
    states = [copy.deepcopy(model)]
    for operations in transactions:
        with update(path) as root:
            for operation in operations:
                apply(model, root, operation)
        states.append(copy.deepcopy(model))
    return states
