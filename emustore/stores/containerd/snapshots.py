"""The overlayfs snapshotter's side (containerd-store-format.md §3): metadata.db and snapshots/<id>/fs.

Committed snapshots only: each gets the next id of the snapshots bucket's sequence, a record under
its key ("<namespace>/<n>/<chain id>") with kind, parent key, inode count and disk usage of its
fs/, and a parents entry linking it to its parent's id. A layer dir staged on the same file system
becomes `snapshots/<id>/` by one rename.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emustore.bbolt.reader import open_db
from emustore.bbolt.writer import update
from emustore.fsutil import ensure_dir, fsync_dir, remove_tree
from emustore.stores.containerd.codec import go_time, read_uvarint, read_varint, uvarint, varint
from emustore.stores.containerd.layout import ContainerdRoot

KIND_COMMITTED = 3
DB_MODE = 0o600
WORK_MODE = 0o711


@dataclass(frozen=True)
class Usage:
    """What the snapshotter records of a committed fs/: distinct inodes (fs/ included) and bytes on disk."""

    inodes: int
    size: int


def usage(fs: Path) -> Usage:
    """Distinct inodes under `fs` (itself included) and the sum of their st_blocks × 512, as the
    snapshotter measures a snapshot when it commits it."""
    seen: set[int] = set()
    size = 0
    pending = [os.fspath(fs)]
    top = os.lstat(fs)
    seen.add(top.st_ino)
    size += top.st_blocks * 512
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if info.st_ino not in seen:
                    seen.add(info.st_ino)
                    size += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return Usage(len(seen), size)


@dataclass(frozen=True)
class NewSnapshot:
    key: str
    parent_key: str | None
    usage: Usage
    labels: dict[str, str]


@dataclass(frozen=True)
class SnapshotInfo:
    """A record of metadata.db: what `ctr snapshots usage` and fsck read."""

    key: str
    id: int
    kind: int
    parent: str | None
    size: int
    inodes: int


@dataclass(frozen=True)
class SnapshotterState:
    records: dict[str, SnapshotInfo]  # by key
    sequence: int
    parents: set[tuple[int, int, str]]  # (parent id, child id, child key) of v1/parents


class Snapshotter:
    def __init__(self, layout: ContainerdRoot) -> None:
        self.layout = layout

    def ids(self) -> dict[str, int]:
        """Snapshot key → id of every snapshot recorded (none without a database)."""
        if not self.layout.metadata_db.exists():
            return {}
        found = {}
        with open_db(self.layout.metadata_db) as db:
            v1 = db.root.bucket(b"v1")
            snaps = v1.bucket(b"snapshots") if v1 is not None else None
            if snaps is None:
                return {}
            for key in snaps.buckets():
                record = snaps.bucket(key)
                raw = record.get(b"id") if record is not None else None
                if raw is not None:
                    found[key.decode()] = read_uvarint(raw)[0]
        return found

    def state(self) -> SnapshotterState:
        """Every record of metadata.db, its sequence and its parent links (ValueError on a bad value)."""
        if not self.layout.metadata_db.exists():
            return SnapshotterState({}, 0, set())
        records = {}
        with open_db(self.layout.metadata_db) as db:
            v1 = db.root.bucket(b"v1")
            snaps = v1.bucket(b"snapshots") if v1 is not None else None
            links = v1.bucket(b"parents") if v1 is not None else None
            for raw_key in snaps.buckets() if snaps is not None else ():
                record = snaps.bucket(raw_key) if snaps is not None else None
                if record is None:
                    continue
                key = raw_key.decode()
                parent = record.get(b"parent")
                records[key] = SnapshotInfo(
                    key, read_uvarint(record.get(b"id") or b"")[0], (record.get(b"kind") or b"\0")[0],
                    parent.decode() if parent else None,
                    read_varint(record.get(b"size") or b"\0"), read_varint(record.get(b"inodes") or b"\0"),
                )
            parents = {
                (read_uvarint(link)[0], _child_id(link), value.decode())
                for link, value in (links.items() if links is not None else ())
            }
            return SnapshotterState(records, snaps.sequence if snaps is not None else 0, parents)

    def record(self, snapshots: list[NewSnapshot]) -> list[int]:
        """Record `snapshots` (parents first) as committed, in one transaction; their ids. A key
        already recorded (left by a writer killed before it committed meta.db) is replaced."""
        ensure_dir(self.layout.overlayfs, 0o700)
        ids = []
        with update(self.layout.metadata_db, create=True, mode=DB_MODE) as root:
            v1 = root.create_bucket_if_not_exists(b"v1")
            parents = v1.create_bucket_if_not_exists(b"parents")
            snaps = v1.create_bucket_if_not_exists(b"snapshots")
            now = go_time()
            for snap in snapshots:
                key = snap.key.encode()
                stale = snaps.bucket(key)
                if stale is not None:  # and the link to it from its parent
                    raw_id = stale.get(b"id")
                    for link, _ in list(parents.items()):
                        if raw_id is not None and _child_id(link) == read_uvarint(raw_id)[0]:
                            parents.delete(link)
                    snaps.delete_bucket(key)
                new_id = snaps.next_sequence()
                bucket = snaps.create_bucket(key)
                bucket.put(b"id", uvarint(new_id))
                bucket.put(b"kind", bytes([KIND_COMMITTED]))
                if snap.parent_key is not None:
                    bucket.put(b"parent", snap.parent_key.encode())
                    parent = snaps.bucket(snap.parent_key.encode())
                    raw = parent.get(b"id") if parent is not None else None
                    if raw is not None:
                        parents.put(uvarint(read_uvarint(raw)[0]) + b"\0" + uvarint(new_id), key)
                bucket.put(b"inodes", varint(snap.usage.inodes))
                bucket.put(b"size", varint(snap.usage.size))
                bucket.put(b"createdat", now)
                bucket.put(b"updatedat", now)
                if snap.labels:
                    labels = bucket.create_bucket(b"labels")
                    for name, value in snap.labels.items():
                        labels.put(name.encode(), value.encode())
                ids.append(new_id)
        return ids

    def publish(self, staged_dir: Path, snapshot_id: int) -> None:
        """Rename a staged layer dir (holding fs/) into snapshots/<id>/, with the work/ dir a
        committed snapshot keeps. A dir already there (a killed writer's) is replaced."""
        ensure_dir(staged_dir / "work", WORK_MODE)
        target = self.layout.snapshot(snapshot_id)
        if os.path.lexists(target):
            remove_tree(target)
        os.rename(staged_dir, target)

    def sync(self) -> None:
        fsync_dir(self.layout.snapshots)

    def remove_unrecorded(self, keep: set[str]) -> list[Path]:
        """Remove what killed writers left: records whose key no namespace of meta.db names (`keep`)
        and snapshots/<id> dirs of no record. Only under the writer lock, never beside a containerd."""
        removed: list[Path] = []
        ids = self.ids()
        orphans = [key for key in ids if key not in keep]
        if orphans:
            with update(self.layout.metadata_db) as root:
                v1 = root.bucket(b"v1")
                snaps = v1.bucket(b"snapshots") if v1 is not None else None
                parents = v1.bucket(b"parents") if v1 is not None else None
                orphan_ids = {ids[key] for key in orphans}
                for key in orphans:
                    if snaps is not None:
                        snaps.delete_bucket(key.encode())
                if parents is not None:
                    for link, _ in list(parents.items()):
                        if read_uvarint(link)[0] in orphan_ids or _child_id(link) in orphan_ids:
                            parents.delete(link)
            removed += [Path(key) for key in orphans]
        live = {str(value) for key, value in ids.items() if key in keep}
        try:
            names = os.listdir(self.layout.snapshots)
        except FileNotFoundError:
            names = []
        for name in names:
            if name.isdigit() and name not in live:
                remove_tree(self.layout.snapshots / name)
                removed.append(self.layout.snapshots / name)
        return removed


def _child_id(link: bytes) -> int:
    _, end = read_uvarint(link)
    return read_uvarint(link, end + 1)[0]
