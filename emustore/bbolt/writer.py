"""Changing a bbolt database copy-on-write, as bbolt commits a read-write transaction.

Only the buckets a transaction changed are rewritten (with their ancestors); every other bucket
keeps its pages. New pages go where the current state references nothing (its free pages, found by
walking the whole tree, or past the high-water mark), are written and fsync'd, and only then the
meta page with the next txid (into slot txid % 2, over the older meta) is written and fsync'd: a
crash before that leaves the previous state, a torn meta fails its checksum and the other wins.
The file keeps its freelist convention (a freelist page, or none as containerd 2.x writes); a new
file gets one, as bbolt creates files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emustore.bbolt.layout import Allocator, inline_value, split_branch, split_leaf
from emustore.bbolt.pages import (
    BUCKET_FLAG,
    FREELIST,
    NO_FREELIST,
    Meta,
    encode_branch,
    encode_bucket,
    encode_freelist,
    encode_leaf,
    freelist_size,
    pages_needed,
)
from emustore.bbolt.reader import MAX_DEPTH, Bucket, Database, lock_file, open_file
from emustore.errors import StoreError

MAX_KEY = 32768
MAX_VALUE = (1 << 31) - 2
NEW_PAGE_SIZE = 4096


class WriteBucket:
    """A bucket inside a write transaction: loaded from its pages on first use, changed in memory,
    written at commit when it or a bucket below it changed."""

    def __init__(self, tx: Transaction, parent: WriteBucket | None, stored: Bucket | None, raw: bytes) -> None:
        self._tx = tx
        self._parent = parent
        self._stored = stored
        self._raw = raw  # the bucket value it was read from: written back as is while unchanged
        self._entries: dict[bytes, bytes | WriteBucket] | None = None if stored is not None else {}
        self._own_pages: set[int] = set()
        self._sequence = stored.sequence if stored is not None else 0
        self._depth: int = parent._depth + 1 if parent is not None else 0
        self.dirty = stored is None

    def _load(self) -> dict[bytes, bytes | WriteBucket]:
        if self._entries is None:
            assert self._stored is not None
            entries: dict[bytes, bytes | WriteBucket] = {}
            stored = self._stored
            with stored.db.checked():
                for flags, key, value in stored.walk(self._own_pages):
                    entries[key] = WriteBucket(self._tx, self, stored.child(value), value) if flags & BUCKET_FLAG else value
            self._entries = entries
        return self._entries

    def _touch(self) -> None:
        bucket: WriteBucket | None = self
        while bucket is not None and not bucket.dirty:
            bucket.dirty = True
            bucket = bucket._parent

    @property
    def sequence(self) -> int:
        """The bucket's sequence (containerd allocates snapshot ids from it)."""
        return self._sequence

    @sequence.setter
    def sequence(self, value: int) -> None:
        if not 0 <= value < 1 << 64:
            raise StoreError(f"bucket sequence {value} out of range")
        self._load()
        self._sequence = value
        self._touch()

    def next_sequence(self) -> int:
        """Increment the sequence and return it (bbolt's NextSequence)."""
        self.sequence = self._sequence + 1
        return self._sequence

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None when it is missing or names a bucket."""
        found = self._load().get(key)
        return found if isinstance(found, bytes) else None

    def put(self, key: bytes, value: bytes) -> None:
        """Set `key` to `value` (not over a bucket)."""
        _check_key(key)
        if len(value) > MAX_VALUE:
            raise StoreError(f"bbolt value of {len(value)} bytes is too large")
        if self._parent is None:
            raise StoreError("the root of a bbolt database holds only buckets")
        entries = self._load()
        if isinstance(entries.get(key), WriteBucket):
            raise StoreError(f"cannot put {key!r}: it is a bucket")
        entries[key] = bytes(value)
        self._touch()

    def delete(self, key: bytes) -> None:
        """Remove `key` (nothing when missing; a bucket must go through `delete_bucket`)."""
        entries = self._load()
        if isinstance(entries.get(key), WriteBucket):
            raise StoreError(f"cannot delete {key!r} as a key: it is a bucket")
        if entries.pop(key, None) is not None:
            self._touch()

    def bucket(self, name: bytes) -> WriteBucket | None:
        """The sub-bucket `name`, or None."""
        found = self._load().get(name)
        return found if isinstance(found, WriteBucket) else None

    def create_bucket(self, name: bytes) -> WriteBucket:
        """A new, empty sub-bucket `name` (an error when the name is taken)."""
        _check_key(name)
        if self._depth >= MAX_DEPTH:
            raise StoreError(f"cannot create bucket {name!r}: buckets nest at most {MAX_DEPTH} deep")
        entries = self._load()
        if name in entries:
            raise StoreError(f"cannot create bucket {name!r}: the name exists")
        entries[name] = created = WriteBucket(self._tx, self, None, b"")
        self._touch()
        return created

    def create_bucket_if_not_exists(self, name: bytes) -> WriteBucket:
        """The sub-bucket `name`, created when missing."""
        return self.bucket(name) or self.create_bucket(name)

    def delete_bucket(self, name: bytes) -> None:
        """Remove the sub-bucket `name` and everything in it; its pages are free after the commit."""
        found = self._load().get(name)
        if not isinstance(found, WriteBucket):
            raise StoreError(f"cannot delete bucket {name!r}: no such bucket")
        del self._load()[name]
        found._release()
        self._touch()

    def _release(self) -> None:
        if self._stored is not None:
            seen: set[int] = set()
            with self._stored.db.checked():
                self._stored.claim_all(seen)
            self._tx.released |= seen

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every plain key, sorted bytewise."""
        ordered = sorted(self._load().items(), key=lambda entry: entry[0])
        return iter([(key, found) for key, found in ordered if isinstance(found, bytes)])

    def buckets(self) -> Iterator[bytes]:
        """The names of the sub-buckets, sorted bytewise."""
        return iter(sorted(key for key, found in self._load().items() if isinstance(found, WriteBucket)))


def _check_key(key: bytes) -> None:
    if not 0 < len(key) <= MAX_KEY:
        raise StoreError(f"bbolt key of {len(key)} bytes (1 to {MAX_KEY} allowed)")


class Transaction:
    """One read-write transaction on an open, exclusively locked database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.meta = db.meta
        self.allocator = Allocator(db.free_pages(), db.meta.hwm)
        self.released: set[int] = set()
        self.root = WriteBucket(self, None, db.root, b"")

    def commit(self) -> None:
        """Write the changed buckets to free pages, sync, then the next meta page, sync; a write that
        fails leaves the previous state (its meta page is still the valid one)."""
        if not self.root.dirty:
            return
        try:
            self._commit()
        except OSError as error:
            raise StoreError(f"cannot write {self.db.path}: {error.strerror}") from None

    def _commit(self) -> None:
        page_size = self.meta.page_size
        root = self._write_tree(self._elements(self.root))
        self.released |= self.root._own_pages
        freelist = NO_FREELIST
        if self.meta.freelist != NO_FREELIST:
            self.released.update(range(self.meta.freelist, self.meta.freelist + self._freelist_span()))
            count = len(self.allocator.free) + len(self.released)
            freelist = self.allocator.take(pages_needed(freelist_size(count), page_size))
            free = sorted(set(self.allocator.free) | self.released)
            os.pwrite(self.db.fd, encode_freelist(freelist, free, page_size), freelist * page_size)
        os.fsync(self.db.fd)
        meta = Meta(page_size, self.meta.flags, root, self.root.sequence, freelist, self.allocator.hwm, self.meta.txid + 1)
        self._write_meta(meta)

    def _freelist_span(self) -> int:
        with self.db.checked():
            return 1 + self.db.page(self.meta.freelist, FREELIST)[0].overflow

    def _elements(self, bucket: WriteBucket) -> list[tuple[int, bytes, bytes]]:
        entries = bucket._load()
        elements = []
        for key in sorted(entries):
            found = entries[key]
            if isinstance(found, bytes):
                elements.append((0, key, found))
            else:
                elements.append((BUCKET_FLAG, key, self._bucket_value(found)))
        return elements

    def _bucket_value(self, bucket: WriteBucket) -> bytes:
        if not bucket.dirty:
            return bucket._raw
        elements = self._elements(bucket)
        self.released |= bucket._own_pages
        value = inline_value(elements, bucket.sequence, self.meta.page_size)
        return value if value is not None else encode_bucket(self._write_tree(elements), bucket.sequence)

    def _write_tree(self, elements: list[tuple[int, bytes, bytes]]) -> int:
        page_size = self.meta.page_size
        level = []
        for chunk in split_leaf(elements, page_size):
            pgid = self._place(encode_leaf(0, chunk, page_size))
            level.append((chunk[0][1] if chunk else b"", pgid))
        while len(level) > 1:
            level = [(chunk[0][0], self._place(encode_branch(0, chunk, page_size))) for chunk in split_branch(level, page_size)]
        return level[0][1]

    def _place(self, page: bytes) -> int:
        """Write an encoded page (its id field patched in) to pages nothing references yet."""
        pgid = self.allocator.take(len(page) // self.meta.page_size)
        os.pwrite(self.db.fd, pgid.to_bytes(8, "little") + page[8:], pgid * self.meta.page_size)
        return pgid

    def _write_meta(self, meta: Meta) -> None:
        slot = meta.txid % 2
        os.pwrite(self.db.fd, meta.encode(slot), slot * meta.page_size)
        os.fsync(self.db.fd)


def _new_database(path: Path, mode: int) -> None:
    """Create `path` as bbolt creates a file: metas 0 and 1 (txids 0, 1), an empty freelist page 2,
    an empty root leaf page 3. Written to a temp file and linked into place: no half-made file."""
    size = NEW_PAGE_SIZE
    pages = b"".join(
        Meta(size, 0, 3, 0, 2, 4, txid).encode(txid) for txid in (0, 1)
    ) + encode_freelist(2, [], size) + encode_leaf(3, [], size)
    fd, temp = tempfile.mkstemp(prefix=".%s.tmp-" % path.name, dir=path.parent)
    try:
        os.write(fd, pages)
        os.fchmod(fd, mode)
        os.fsync(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            return
    finally:
        os.close(fd)
        os.unlink(temp)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def update(path: Path, create: bool = False, mode: int = 0o644) -> Iterator[WriteBucket]:
    """A read-write transaction on `path` (made first when missing and `create`), yielding the root
    bucket; committed when the block ends normally, dropped when it raises. The file is flock'ed
    exclusively throughout, as bbolt does: a database a running containerd holds is refused."""
    if create and not path.exists():
        _new_database(path, mode)
    fd = open_file(path, os.O_RDWR)
    try:
        lock_file(fd, path, exclusive=True)
        tx = Transaction(Database(fd, path))
        yield tx.root
        tx.commit()
    finally:
        os.close(fd)
