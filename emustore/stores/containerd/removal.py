"""`ctr images rm --sync` on a containerd root: image records removed, then what containerd's
garbage collector would collect (stores/containerd/gc.py), in a crash-safe order:

  1. meta.db, one transaction: the image records and every content and overlayfs snapshot record
     no longer referenced, in any namespace. The commit point: the images are gone atomically,
     and what remains is exactly what containerd keeps.
  2. the snapshotter's metadata.db: the records no namespace names, then their snapshots/<id> dirs;
  3. the blobs no namespace records.

A kill after 1 leaves only unreferenced snapshots and blobs: containerd opens the root and
collects them itself; the next emustore writer finds this removal's dead staging set and sweeps
them (ContainerdStore.remove_abandoned). A kill before 1 changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emustore.stores.containerd.catalog import ContainerdCatalog
from emustore.stores.containerd.gc import collect
from emustore.stores.containerd.metadata import NamespaceRecords
from emustore.stores.containerd.store import ContainerdStore


@dataclass
class Removal:
    images: list[str] = field(default_factory=list)  # names removed, in the order given
    contents: int = 0  # content records collected (all namespaces)
    snapshots: int = 0  # snapshot records collected (all namespaces)
    files: list[Path] = field(default_factory=list)  # blobs and snapshot dirs removed


def remove_images(store: ContainerdStore, references: list[str], force: bool = False) -> Removal:
    """Remove the images `references` name in the store's namespace (each resolved as `ctr` names
    it, or fully qualified), then collect; NoSuchImage before anything changes when one is missing."""
    store.refuse_if_owned(force)
    with store.reading():
        for text in references:  # a missing image: refused before anything is made or changed
            ContainerdCatalog(store.layout.root, store.namespace).resolve(text)
    removal = Removal()
    with store.staging("rmi"), store.lock():
        catalog = ContainerdCatalog(store.layout.root, store.namespace)
        for text in references:
            name = catalog.resolve(text).name
            if name not in removal.images:
                removal.images.append(name)
        everything = store.meta.records()
        kept = dict(everything)
        own = kept.get(store.namespace)
        if own is not None:
            images = {name: image for name, image in own.images.items() if name not in removal.images}
            kept[store.namespace] = NamespaceRecords(
                own.name, images, own.contents, own.snapshots, own.holders, own.other_snapshotters
            )
        garbage = collect(kept)
        store.meta.remove({store.namespace: set(removal.images)}, garbage.contents, garbage.snapshots)
        removal.contents = sum(len(found) for found in garbage.contents.values())
        removal.snapshots = sum(len(found) for found in garbage.snapshots.values())
        removal.files = store.sweep()
    return removal
