"""The explain walk of a containerd root: image record → content → manifest → config → layers →
snapshots, then the files of each snapshot (tree.py, changes.py) and the overlay mount containerd
makes of them (the snapshots' fs/ dirs as lowers).

Read through the containerd catalog (stores/containerd/catalog.py: meta.db read under our lock,
blobs bounded and verified); a missing piece shows as None, never fails the walk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import is_digest
from emustore.explain.changes import ImageFiles, analyse
from emustore.explain.mount import LookMount
from emustore.explain.tree import Budget, read_layer
from emustore.fsck.findings import is_real_dir
from emustore.stores.containerd.catalog import ContainerdCatalog, ImageView


@dataclass(frozen=True)
class BlobStep:
    digest: str
    media_type: str
    size: int
    path: Path | None  # None: the record names no sha256 digest
    present: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class SnapshotStep:
    index: int
    chain_id: str | None
    diff_id: str | None
    blob: BlobStep
    key: str | None  # the snapshotter's key, from meta.db's snapshots/overlayfs/<chain id>/name
    snapshot_id: int | None  # metadata.db's snapshots/<key>/id
    fs: Path | None  # snapshots/<id>/fs when it is a real dir


@dataclass
class ContainerdWalk:
    root: Path
    namespace: str
    query: str
    view: ImageView
    target: BlobStep
    index_entries: list[tuple[str, str, bool]] = field(default_factory=list)  # (digest, platform, chosen)
    manifest: BlobStep | None = None
    config: BlobStep | None = None
    layers: list[SnapshotStep] = field(default_factory=list)
    files: ImageFiles | None = None
    look: LookMount | None = None

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)


def explain(catalog: ContainerdCatalog, query: str) -> ContainerdWalk:
    image = catalog.resolve(query)
    view = catalog.view(image)

    def blob(digest: str, media_type: str, size: int) -> BlobStep:
        record = catalog.records.contents.get(digest)
        return BlobStep(
            digest, media_type, size, catalog.layout.blob(digest) if is_digest(digest) else None,
            catalog.content.has(digest) and record is not None,
            dict(sorted(record.labels.items())) if record is not None else {},
        )

    walk = ContainerdWalk(catalog.layout.root, catalog.namespace, query, view, blob(image.digest, image.media_type, image.size))
    if view.manifest is not None:
        if view.manifest.digest != image.digest:
            walk.manifest = blob(view.manifest.digest, view.manifest.media_type, view.manifest.size)
        else:
            walk.manifest = walk.target
    if view.config is not None:
        walk.config = blob(view.config.digest, view.config.media_type, view.config.size)
    for index, layer in enumerate(view.layers):
        fs = catalog.layout.snapshot(layer.snapshot_id) / "fs" if layer.snapshot_id is not None else None
        walk.layers.append(SnapshotStep(
            index, layer.chain_id, layer.diff_id,
            blob(layer.descriptor.digest, layer.descriptor.media_type, layer.descriptor.size),
            layer.snapshot_key, layer.snapshot_id, fs if fs is not None and is_real_dir(fs) else None,
        ))
    budget = Budget()
    walk.files = analyse([read_layer(layer.fs, budget) for layer in walk.layers])
    ids = [layer.snapshot_id for layer in walk.layers if layer.snapshot_id is not None]
    if ids and len(ids) == len(walk.layers):
        lowers = ["%d/fs" % found for found in reversed(ids[:-1])]
        walk.look = LookMount(str(catalog.layout.snapshots), "%d/fs" % ids[-1], ":".join(lowers) or None, False)
    return walk
