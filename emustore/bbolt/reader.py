"""Reading a bbolt database: the valid meta, bounded page reads, buckets, and a normalised dump.

Nothing read is trusted: every page id must lie below the high-water mark, every page span inside
the file, every element inside its page, keys strictly increasing, and no page may be reached twice
(a cycle or a shared page), so a hostile or torn file gives one `StoreError`, never an endless walk.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

from emustore.bbolt.pages import (
    BRANCH,
    BUCKET_FLAG,
    FREELIST,
    LEAF,
    NO_FREELIST,
    PAGE_SIZES,
    Corrupt,
    Header,
    Meta,
    decode_branch,
    decode_bucket,
    decode_freelist,
    decode_leaf,
)
from emustore.errors import StoreError

MAX_DEPTH = 64  # branch levels of one bucket and nesting of buckets: far above any real database
MAX_PAGES = 1 << 22  # 16 GiB of 4 KiB pages: a larger high-water mark is refused before any walk
MAX_SPAN = 256 << 20  # bytes of one page with its overflow: the largest single read


class BucketDump(TypedDict):
    """A bucket as plain data: its sequence, its key/values and its sub-buckets, recursively."""

    sequence: int
    values: dict[bytes, bytes]
    buckets: dict[bytes, BucketDump]


def lock_file(fd: int, path: Path, exclusive: bool) -> None:
    """flock the database as bbolt does (shared to read, exclusive to write), without waiting."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StoreError(f"{path} is locked by another process (a running containerd?)") from None
        raise StoreError(f"cannot lock {path}: {error.strerror}") from None


class Database:
    """An open bbolt file, seen through its valid meta page (the one with the higher txid whose
    checksum is good, else the other)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self.file_size = os.fstat(fd).st_size
        self.meta = self._valid_meta()
        self.page_size = self.meta.page_size
        self._check_meta()

    def _valid_meta(self) -> Meta:
        first = Meta.decode(self._pread(0, 4096))
        sizes = (first.page_size,) if first is not None else PAGE_SIZES
        second = None
        for size in sizes:
            second = Meta.decode(self._pread(size, 4096))
            if second is not None:
                break
        valid = [meta for meta in (first, second) if meta is not None]
        if not valid:
            raise self.corrupt("no valid meta page (bad magic, version or checksum in both)")
        return max(valid, key=lambda meta: meta.txid)

    def _check_meta(self) -> None:
        meta = self.meta
        if meta.hwm < 3 or meta.hwm > MAX_PAGES:
            raise self.corrupt(f"high-water mark {meta.hwm} out of range")
        if meta.hwm * self.page_size > self.file_size:
            raise self.corrupt(f"{meta.hwm} pages in use but the file has {self.file_size} bytes")
        if not 2 <= meta.root < meta.hwm:
            raise self.corrupt(f"root page {meta.root} out of range")
        if meta.freelist != NO_FREELIST and not 2 <= meta.freelist < meta.hwm:
            raise self.corrupt(f"freelist page {meta.freelist} out of range")

    def corrupt(self, message: str) -> StoreError:
        """The one-line error for a broken database."""
        return StoreError(f"{self.path}: corrupt bbolt database: {message}")

    def _pread(self, offset: int, size: int) -> bytes:
        try:
            return os.pread(self.fd, size, offset)
        except OSError as error:
            raise StoreError(f"cannot read {self.path}: {error.strerror}") from None

    def page(self, pgid: int, kinds: int) -> tuple[Header, bytes]:
        """Page `pgid` with its overflow, checked: in range, its own id, one of the flags `kinds`."""
        if not 2 <= pgid < self.meta.hwm:
            raise Corrupt(f"page id {pgid} out of range (high-water mark {self.meta.hwm})")
        first = self._pread(pgid * self.page_size, self.page_size)
        header = Header.decode(first)
        if header.pgid != pgid or not header.flags & kinds or header.flags & ~kinds:
            raise Corrupt(f"page {pgid}: header says page {header.pgid} with flags {header.flags:#x}")
        if pgid + header.overflow >= self.meta.hwm:
            raise Corrupt(f"page {pgid}: {header.overflow} overflow pages pass the high-water mark")
        if (1 + header.overflow) * self.page_size > MAX_SPAN:
            raise Corrupt(f"page {pgid}: {header.overflow} overflow pages, more than {MAX_SPAN} bytes")
        if not header.overflow:
            return header, first
        rest = self._pread((pgid + 1) * self.page_size, header.overflow * self.page_size)
        if len(rest) != header.overflow * self.page_size:
            raise Corrupt(f"page {pgid}: overflow pages past the end of the file")
        return header, first + rest

    @property
    def root(self) -> Bucket:
        """The root bucket (its sequence is the meta's)."""
        return Bucket(self, self.meta.root, self.meta.sequence, b"")

    def freelist(self) -> list[int] | None:
        """The page ids the freelist page lists, or None when the database has no freelist page."""
        if self.meta.freelist == NO_FREELIST:
            return None
        with self.checked():
            return decode_freelist(self.page(self.meta.freelist, FREELIST)[1])

    def used_pages(self) -> set[int]:
        """Every page the current state references (metas, freelist, every bucket's pages), each
        reached exactly once: the walk that proves the whole tree sound."""
        seen = {0, 1}
        with self.checked():
            if self.meta.freelist != NO_FREELIST:
                header, _ = self.page(self.meta.freelist, FREELIST)
                claim(seen, self.meta.freelist, header.overflow)
            self.root.claim_all(seen)
        return seen

    def free_pages(self) -> list[int]:
        """The pages below the high-water mark the current state does not reference, sorted."""
        used = self.used_pages()
        return [pgid for pgid in range(2, self.meta.hwm) if pgid not in used]

    @contextmanager
    def checked(self) -> Iterator[None]:
        """Turn a `Corrupt` raised inside into the one-line error naming this file."""
        try:
            yield
        except Corrupt as error:
            raise self.corrupt(str(error)) from None


def claim(seen: set[int], pgid: int, overflow: int) -> None:
    """Mark a page and its overflow as reached; reaching one twice is a corruption (cycle, shared page)."""
    span = range(pgid, pgid + 1 + overflow)
    if any(page in seen for page in span):
        raise Corrupt(f"page {pgid} is reached twice (a cycle or a shared page)")
    seen.update(span)


class Bucket:
    """A bucket of an open database: a page tree (root pgid) or an inline page (root 0)."""

    def __init__(self, db: Database, root: int, sequence: int, inline: bytes, depth: int = 0) -> None:
        self.db = db
        self.root = root
        self.sequence = sequence
        self.inline = inline
        self.depth = depth

    def child(self, value: bytes) -> Bucket:
        """The sub-bucket a bucket element's value describes."""
        depth = self.depth + 1
        if depth > MAX_DEPTH:
            raise Corrupt(f"buckets nested deeper than {MAX_DEPTH}")
        root, sequence, inline = decode_bucket(value)
        return Bucket(self.db, root, sequence, inline, depth)

    def walk(self, seen: set[int]) -> Iterator[tuple[int, bytes, bytes]]:
        """Every (flags, key, value) element in key order, claiming each page of the tree in `seen`."""
        if self.root == 0:
            yield from self._checked_leaf(decode_leaf(self._inline_page()), None)
            return
        stack: list[list[int]] = [[self.root]]
        last: list[bytes | None] = [None]
        while stack:
            if not stack[-1]:
                stack.pop()
                continue
            pgid = stack[-1].pop(0)
            if len(stack) > MAX_DEPTH:
                raise Corrupt(f"page tree deeper than {MAX_DEPTH} at page {pgid}")
            header, buf = self.db.page(pgid, BRANCH | LEAF)
            claim(seen, pgid, header.overflow)
            if header.flags & LEAF:
                for element in self._checked_leaf(decode_leaf(buf), last[0]):
                    last[0] = element[1]
                    yield element
                continue
            children = decode_branch(buf)
            if not children:
                raise Corrupt(f"branch page {pgid} is empty")
            _check_order([key for key, _ in children], f"branch page {pgid}")
            stack.append([child for _, child in children])

    def claim_all(self, seen: set[int]) -> None:
        """Claim in `seen` every page of this bucket and of the buckets below it."""
        pending = [self]
        while pending:
            bucket = pending.pop()
            pending.extend(bucket.child(value) for flags, _, value in bucket.walk(seen) if flags & BUCKET_FLAG)

    def _inline_page(self) -> bytes:
        header = Header.decode(self.inline)
        if header.flags != LEAF:
            raise Corrupt(f"inline bucket page with flags {header.flags:#x}")
        return self.inline

    @staticmethod
    def _checked_leaf(
        elements: list[tuple[int, bytes, bytes]], after: bytes | None
    ) -> list[tuple[int, bytes, bytes]]:
        keys = [key for _, key, _ in elements]
        _check_order(([after] if after is not None else []) + keys, "leaf")
        return elements

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every (flags, key, raw value) element in key order."""
        with self.db.checked():
            yield from self.walk(set())

    def _find(self, key: bytes) -> tuple[int, bytes] | None:
        with self.db.checked():
            if self.root == 0:
                elements = decode_leaf(self._inline_page())
            else:
                elements = self._descend(key)
            keys = [found for _, found, _ in elements]
            index = bisect.bisect_left(keys, key)
            if index < len(keys) and keys[index] == key:
                return elements[index][0], elements[index][2]
        return None

    def _descend(self, key: bytes) -> list[tuple[int, bytes, bytes]]:
        pgid = self.root
        for _ in range(MAX_DEPTH):
            header, buf = self.db.page(pgid, BRANCH | LEAF)
            if header.flags & LEAF:
                return decode_leaf(buf)
            children = decode_branch(buf)
            if not children:
                raise Corrupt(f"branch page {pgid} is empty")
            index = bisect.bisect_right([first for first, _ in children], key) - 1
            pgid = children[max(index, 0)][1]
        raise Corrupt(f"page tree deeper than {MAX_DEPTH} below page {self.root}")

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None when it is missing or names a bucket."""
        found = self._find(key)
        return found[1] if found is not None and not found[0] & BUCKET_FLAG else None

    def bucket(self, name: bytes) -> Bucket | None:
        """The sub-bucket `name`, or None."""
        found = self._find(name)
        if found is None or not found[0] & BUCKET_FLAG:
            return None
        with self.db.checked():
            return self.child(found[1])

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every plain key, sorted bytewise."""
        return ((key, value) for flags, key, value in self.entries() if not flags & BUCKET_FLAG)

    def buckets(self) -> Iterator[bytes]:
        """The names of the sub-buckets, sorted bytewise."""
        return (key for flags, key, _ in self.entries() if flags & BUCKET_FLAG)

    def dump(self, seen: set[int]) -> BucketDump:
        """This bucket and everything below it as plain data, each page claimed once in `seen`."""
        result: BucketDump = {"sequence": self.sequence, "values": {}, "buckets": {}}
        pending = [(self, result)]
        while pending:
            bucket, into = pending.pop()
            with self.db.checked():
                for flags, key, value in bucket.walk(seen):
                    if flags & BUCKET_FLAG:
                        sub = bucket.child(value)
                        into["buckets"][key] = {"sequence": sub.sequence, "values": {}, "buckets": {}}
                        pending.append((sub, into["buckets"][key]))
                    else:
                        into["values"][key] = value
        return result


def _check_order(keys: list[bytes], where: str) -> None:
    for before, after in zip(keys, keys[1:]):
        if not before < after:
            raise Corrupt(f"{where}: keys not in strictly increasing order")


def open_file(path: Path, flags: int) -> int:
    """A descriptor on the regular file `path` (never through a symlink), or a one-line StoreError."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise StoreError(f"cannot open {path}: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"cannot open {path}: not a regular file")
    return fd


@contextmanager
def open_db(path: Path, lock: bool = True) -> Iterator[Database]:
    """Open `path` read-only (a shared flock unless `lock` is False) and yield its `Database`."""
    fd = open_file(path, os.O_RDONLY)
    try:
        if lock:
            lock_file(fd, path, exclusive=False)
        yield Database(fd, path)
    finally:
        os.close(fd)


def dump(path: Path) -> BucketDump:
    """The whole database at `path` as nested plain data (the root's sequence is the meta's): two
    databases holding the same buckets, keys, values and sequences dump equal, whatever their pages."""
    with open_db(path) as db:
        return db.root.dump({0, 1})
