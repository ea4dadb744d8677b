"""A containerd namespace's disk usage as ctr reports it: `ctr content ls` (each blob's recorded
size) and `ctr snapshots usage` (each snapshot's size and inodes, as the snapshotter recorded them
when it committed the snapshot)."""

from __future__ import annotations

from dataclasses import dataclass

from emustore.errors import StoreError
from emustore.stores.containerd.metadata import MetaDB
from emustore.stores.containerd.snapshots import Snapshotter


@dataclass(frozen=True)
class SnapshotUsage:
    name: str  # the namespace's name for it (a chain id)
    size: int | None  # None: the snapshotter has no record of it
    inodes: int | None


@dataclass(frozen=True)
class ContainerdUsage:
    contents: list[tuple[str, int]]  # (digest, size) in ctr's order
    snapshots: list[SnapshotUsage]

    @property
    def content_size(self) -> int:
        return sum(size for _, size in self.contents)

    @property
    def snapshot_size(self) -> int:
        return sum(snapshot.size or 0 for snapshot in self.snapshots)


def disk_usage(meta: MetaDB, snapshotter: Snapshotter, namespace: str) -> ContainerdUsage:
    """The namespace's content and snapshots, in key order as ctr lists them."""
    if not snapshotter.layout.root.is_dir():
        raise StoreError("no containerd root at %s" % snapshotter.layout.root)
    records = meta.records().get(namespace)
    if records is None:
        return ContainerdUsage([], [])
    try:
        recorded = snapshotter.state().records
    except ValueError as error:
        raise StoreError("%s: %s" % (snapshotter.layout.metadata_db, error)) from None
    contents = [(digest, records.contents[digest].size) for digest in sorted(records.contents, key=str.encode)]
    snapshots = []
    for name in sorted(records.snapshots, key=str.encode):
        info = recorded.get(records.snapshots[name].key)
        snapshots.append(SnapshotUsage(name, info.size if info else None, info.inodes if info else None))
    return ContainerdUsage(contents, snapshots)
