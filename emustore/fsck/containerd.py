"""`emustore fsck --store containerd`: check a containerd root (any namespace) as containerd reads it.

- both bbolt files open and walk (a corrupt one is one problem, nothing else is checked from it);
- every blob is a regular file named by its sha256, whose bytes hash to its name (read in
  chunks, never through a link) and whose size is its records' size;
- every content record has its blob; every image's target, and what `ctr images check` requires
  of it (the platform's manifest, config and layers) is recorded and present; a config's
  `gc.ref.snapshot.overlayfs` names a snapshot of the namespace. (gc.ref.content labels of other
  platforms' manifests and layers may dangle: containerd fetches only what it unpacks.)
- every overlayfs snapshot of meta.db has its snapshotter record, committed, with the parent its
  meta.db parent has, and a `snapshots/<id>/fs` dir; the snapshotter's sequence is at least
  every id; its parent links agree with its records.
Leftovers (what `--repair` removes, as containerd's collector or our next writer would): dead
writers' staging sets and temp files, snapshot records and dirs no namespace names, blobs no
namespace records.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from emustore.errors import StoreError
from emustore.fsck.findings import Findings, Problem, listdir
from emustore.fsutil import TEMP_PREFIX
from emustore.stores.containerd.catalog import ContainerdCatalog
from emustore.stores.containerd.metadata import NamespaceRecords
from emustore.stores.containerd.snapshots import KIND_COMMITTED, SnapshotterState
from emustore.stores.containerd.store import ContainerdStore
from emustore.stores.docker.staging import abandoned

CHUNK = 1 << 20
GC_SNAPSHOT = "containerd.io/gc.ref.snapshot.overlayfs"


def check(store: ContainerdStore) -> list[Problem]:
    """Every problem of the root, in a stable order (the caller holds our lock when it exists)."""
    layout = store.layout
    if not layout.root.is_dir():
        raise StoreError("no containerd root at %s" % layout.root)
    found = Findings()
    try:
        namespaces = store.meta.records()
    except StoreError as error:
        found.report(layout.meta_db, str(error).split(": ", 1)[-1])
        return found.problems
    try:
        snapshotter = store.snapshotter.state()
    except (StoreError, ValueError) as error:
        found.report(layout.metadata_db, str(error).split(": ", 1)[-1])
        return found.problems
    sizes = _check_blobs(store, namespaces, found)
    for name in sorted(namespaces):
        _check_namespace(store, namespaces[name], sizes, snapshotter, found)
    _check_snapshotter(store, namespaces, snapshotter, found)
    for path in abandoned(layout.staging):
        found.report(path, "staging of a dead writer", leftover=True)
    for temp in store.content.temp_files():
        found.report(temp, "temp file of an interrupted write", leftover=True)
    return found.problems


def _check_blobs(store: ContainerdStore, namespaces: dict[str, NamespaceRecords], found: Findings) -> dict[str, int]:
    """Each blob verified; its digest → size (what is really there; -1 when it does not verify)."""
    recorded: dict[str, int] = {}
    for records in namespaces.values():
        for digest, content in records.contents.items():
            recorded.setdefault(digest, content.size)
    sizes = {}
    for name in listdir(store.layout.blobs):
        path = store.layout.blobs / name
        if name.startswith(TEMP_PREFIX):
            continue  # reported with the leftovers
        if len(name) != 64 or name.strip("0123456789abcdef"):
            found.report(path, "not a sha256 blob name")
            continue
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            found.report(path, "not a regular file")
            continue
        digest = "sha256:" + name
        actual = _sha256(path)
        if actual is None or actual != name:
            found.report(path, "content does not match its digest" if actual else "unreadable")
            sizes[digest] = -1  # there, but not the blob: reported once
            continue
        sizes[digest] = info.st_size
        if digest not in recorded:
            found.report(path, "a blob no namespace records (containerd collects it)", leftover=True)
        elif recorded[digest] != info.st_size:
            found.report(path, "%d bytes, recorded as %d" % (info.st_size, recorded[digest]))
    return sizes


def _sha256(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    digest = hashlib.sha256()
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def _check_namespace(
    store: ContainerdStore, records: NamespaceRecords, sizes: dict[str, int], snapshotter: SnapshotterState, found: Findings
) -> None:
    where = store.layout.meta_db
    ns = records.name
    for digest in sorted(records.contents):
        if digest not in sizes:
            found.report(where, "namespace %s: content %s has no blob" % (ns, digest))
        snapshot = records.contents[digest].labels.get(GC_SNAPSHOT)
        if snapshot is not None and snapshot not in records.snapshots:
            found.report(where, "namespace %s: %s's %s names no snapshot" % (ns, digest, GC_SNAPSHOT))
    catalog = ContainerdCatalog(store.layout.root, ns)
    for name in catalog.names():
        view = catalog.view(records.images[name])
        if view.image.digest not in records.contents:
            found.report(where, "namespace %s: image %s: target %s is not recorded" % (ns, name, view.image.digest))
            continue
        for problem in view.problems:
            found.report(where, "namespace %s: image %s: %s" % (ns, name, problem))
        for descriptor, present in view.required:
            if not present:
                found.report(where, "namespace %s: image %s: %s missing" % (ns, name, descriptor.digest))
    for chain in sorted(records.snapshots):
        snap = records.snapshots[chain]
        info = snapshotter.records.get(snap.key)
        if info is None:
            found.report(where, "namespace %s: snapshot %s: no snapshotter record %s" % (ns, chain, snap.key))
            continue
        if info.kind != KIND_COMMITTED:
            continue  # an active or view snapshot (a container's): its own rules
        parent = records.snapshots.get(snap.parent) if snap.parent is not None else None
        if snap.parent is not None and parent is None:
            found.report(where, "namespace %s: snapshot %s: parent %s is not recorded" % (ns, chain, snap.parent))
        elif (parent.key if parent is not None else None) != info.parent:
            found.report(where, "namespace %s: snapshot %s: its snapshotter record's parent is %s" % (ns, chain, info.parent))


def _check_snapshotter(
    store: ContainerdStore, namespaces: dict[str, NamespaceRecords], snapshotter: SnapshotterState, found: Findings
) -> None:
    layout = store.layout
    named = {snap.key for records in namespaces.values() for snap in records.snapshots.values()}
    by_id = {info.id: key for key, info in snapshotter.records.items()}
    for key in sorted(snapshotter.records):
        info = snapshotter.records[key]
        if info.id > snapshotter.sequence:
            found.report(layout.metadata_db, "snapshot %s: id %d above the sequence %d" % (key, info.id, snapshotter.sequence))
        if key not in named:
            found.report(layout.metadata_db / key, "a snapshot no namespace names (containerd collects it)", leftover=True)
        elif info.kind == KIND_COMMITTED and not _is_dir(layout.snapshot(info.id) / "fs"):
            found.report(layout.snapshot(info.id), "snapshot %s has no fs/ dir" % key)
        if info.parent is not None and info.parent not in snapshotter.records:
            found.report(layout.metadata_db, "snapshot %s: parent %s is not recorded" % (key, info.parent))
    for parent_id, child_id, child in sorted(snapshotter.parents):
        record = snapshotter.records.get(child)
        parent = snapshotter.records.get(record.parent) if record is not None and record.parent else None
        if record is None or record.id != child_id or parent is None or parent.id != parent_id:
            found.report(layout.metadata_db, "parent link %d → %d (%s) disagrees with the records" % (parent_id, child_id, child))
    for name in listdir(layout.snapshots):
        if not (name.isdigit() and int(name) in by_id):
            found.report(layout.snapshots / name, "a snapshot dir of no record", leftover=True)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def repair(store: ContainerdStore, force: bool = False) -> list[Path]:
    """Remove the leftovers (dead writers' staging and temp files, what no namespace references),
    under our lock; a root a running containerd owns is refused unless `force`."""
    store.refuse_if_owned(force)
    removed = store.remove_abandoned()
    with store.lock():
        for temp in store.content.temp_files():
            os.unlink(temp)
            removed.append(temp)
        removed += store.sweep()
    return removed
