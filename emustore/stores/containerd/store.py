"""containerd's image store as a Destination (stores/destination.py): what `ctr images pull` (with
unpack, overlayfs snapshotter) leaves in a containerd root, in one namespace.

Layers are extracted into a staging set of ours inside the snapshotter's dir (same file system),
each keeping its compressed blob beside it as fetched; nothing is visible until the whole image
verified. Then, under our writer lock, one commit (docs/containerd-store.md, "Crash order"):
  1. blobs renamed into the content store (an unreferenced blob harms nothing);
  2. the snapshotter's metadata.db: the new snapshots, ids from its sequence (one transaction);
  3. each staged layer dir renamed to snapshots/<id>;
  4. meta.db: content records with their labels, snapshots, images (one transaction).
A writer killed before 4 leaves snapshots no namespace references: the next writer (finding its
dead staging set) removes them, as containerd's garbage collector would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from pathlib import Path
import re

from emustore.engines import DEFAULT, Dialect
from emustore.errors import StoreError, UsageError
from emustore.fsutil import copy_tree, ensure_dir, random_hex, remove_tree, root_lock
from emustore.imageconfig import parse_image_config
from emustore.manifest import INDEX_TYPES, LAYER_TYPES, MANIFEST_TYPES, Descriptor, ImageIndex, ImageManifest, parse_manifest
from emustore.reference import parse_reference
from emustore.sources.base import ResolvedImage
from emustore.stores.containerd import ownership
from emustore.stores.containerd.content import ContentStore
from emustore.stores.containerd.dialect import CONTAINERD, ContainerdDialect
from emustore.stores.containerd.layout import DOCKER_NAMESPACE, SNAPSHOTTER, ContainerdRoot
from emustore.stores.containerd.metadata import (
    SOURCE_LABEL,
    ContentRecord,
    ImageRecord,
    MetaChanges,
    MetaDB,
    NamespaceState,
    SnapshotRecord,
)
from emustore.stores.containerd.snapshots import NewSnapshot, Snapshotter, Usage, usage
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.staging import StagingSet, abandoned, writing

ROLE = "a containerd root"
_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*\Z")  # containerd's namespace names
MAX_NAMESPACE = 76
MAX_LABEL = 4096  # key + value, containerd's limit
CRI = "containerd.io/snapshot/cri."
GC_CONTENT = "containerd.io/gc.ref.content."

if TYPE_CHECKING:
    from emustore.layers.pipeline import UnpackOptions


@dataclass
class StagedSnapshot:
    """A layer being written: fs/ in its dir (renamed to snapshots/<id>/ at commit), its blob
    kept beside the dir; filled in once verified (ContainerdStore.prepare_layer)."""

    dir: Path
    keeps_blob: bool = True
    chain_id: str = ""
    parent: str | None = None
    blob_digest: str = ""
    usage: Usage | None = None

    @property
    def diff(self) -> Path:
        return self.dir / "fs"

    @property
    def tar_split(self) -> None:
        return None

    @property
    def blob(self) -> Path | None:
        return self.dir.with_name(self.dir.name + ".blob") if self.keeps_blob else None


@dataclass
class _Commit:
    """What the committing block gathered, written when it ends."""

    state: NamespaceState
    layers: list[StagedSnapshot] = field(default_factory=list)
    blobs: list[tuple[Path, str]] = field(default_factory=list)
    source: str | None = None
    image: ResolvedImage | None = None
    names: list[str] = field(default_factory=list)


def check_namespace(namespace: str) -> str:
    if len(namespace) > MAX_NAMESPACE or not _NAMESPACE.match(namespace):
        raise UsageError("invalid namespace %r: letters and digits, separated by single . _ or -" % namespace)
    return namespace


class ContainerdStore:
    """A containerd root, namespace `namespace`, written as the containerd `dialect` ships does."""

    def __init__(self, root: Path, dialect: Dialect = DEFAULT, namespace: str = "default") -> None:
        self.layout = ContainerdRoot(Path(root).absolute())
        self.dialect: ContainerdDialect = CONTAINERD[dialect.containerd]
        self.namespace = check_namespace(namespace)
        self.content = ContentStore(self.layout)
        self.meta = MetaDB(self.layout.meta_db, namespace)
        self.snapshotter = Snapshotter(self.layout)
        self._commit: _Commit | None = None
        self._pending: dict[str, StagedSnapshot] = {}
        self._planned: NamespaceState | None = None  # read once for a pull's plan; re-read under the lock

    def refuse_if_owned(self, force: bool) -> None:
        """A database flock held by anyone but another emustore writer (waited for) is containerd's."""
        if self.layout.lock_file.exists():
            with root_lock(self.layout.lock_file):
                ownership.check_not_owned(self.layout, force)
        else:
            ownership.check_not_owned(self.layout, force)

    def lock(self) -> AbstractContextManager[None]:
        """Our writer lock (a file in our dir). Every read and write of the databases happens under
        it, so that bbolt's flocks never meet between emustore processes: only a containerd's."""
        self.layout.prepare_staging()
        return root_lock(self.layout.lock_file)

    def reading(self) -> AbstractContextManager[None]:
        """For a reader: our writer lock when an emustore writer ever ran here (so that its
        exclusive bbolt flock is never taken for a containerd's), else nothing to wait for."""
        return root_lock(self.layout.lock_file) if self.layout.lock_file.exists() else nullcontext()

    def unpacking(self, options: UnpackOptions) -> UnpackOptions:
        """containerd's applier sets empty xattrs, never trusted.* ones, never through a symlink."""
        applier = replace(options.dialect, empty_xattrs=True, symlink_xattrs_on_target=False)
        return replace(options, dialect=applier, skipped_xattrs=(b"trusted.",))

    @property
    def keeps_every_manifest(self) -> bool:
        """ctr 2.x keeps every manifest of an index; Docker's pull into "moby" (28) only the platform's."""
        return self.dialect.every_manifest and self.namespace != DOCKER_NAMESPACE

    @property
    def configs(self) -> ContentStore:
        return self.content

    def staging(self, kind: str) -> AbstractContextManager[StagingSet]:
        """A staging set of ours (stores/docker/staging.py), dead writers' leftovers removed first."""
        return writing(self.layout, kind, self.remove_abandoned, ROLE)

    def remove_abandoned(self) -> list[Path]:
        """Dead writers' staging sets; if there was any, under the lock, their temp files and what
        they published but never committed to meta.db, or left after committing a removal (sweep)."""
        removed = []
        for path in abandoned(self.layout.staging):
            try:
                remove_tree(path)
            except OSError:
                continue
            removed.append(path)
        if removed:
            with self.lock():
                for temp in self.content.temp_files():
                    remove_tree(temp)
                removed += self.sweep()
        return removed

    def sweep(self) -> list[Path]:
        """Under the lock: what no namespace of meta.db records, as containerd's collector removes
        it: snapshots (metadata.db records, then their dirs), then blobs."""
        removed = self.snapshotter.remove_unrecorded(self.meta.snapshot_keys())
        return removed + self.content.remove_unrecorded(self.meta.blob_digests())

    def discard_staging(self) -> None:
        self.layout.remove_empty_staging()

    def has_image(self, image_id: str, top_chain_id: str | None) -> bool:
        """Never short-cut: the image record, its manifests and labels are written each time."""
        return False

    def has_layer(self, chain_id: str, diff_id: str, blob_digest: str, by_distribution: bool) -> bool:
        """The namespace has the snapshot and the blob (kept for a load too), as containerd reuses them."""
        if self._planned is None:
            with self.lock():
                self._planned = self.meta.state()
        state = self._planned
        return chain_id in state.snapshots and blob_digest in state.blobs and self.content.has(blob_digest)

    def stage(self, into: StagingSet) -> StagedSnapshot:
        staged = StagedSnapshot(into.dir / random_hex(16))
        os.mkdir(staged.dir, 0o700)
        ensure_dir(staged.diff, 0o755)
        return staged

    def stage_repeat(self, into: StagingSet, chain_id: str, reread: bool) -> StagedSnapshot:
        """A copy of the fs/ of `chain_id` (staged, or committed earlier): applying the same blob
        again gives the same tree."""
        staged = StagedSnapshot(into.dir / random_hex(16), keeps_blob=False)
        os.mkdir(staged.dir, 0o700)
        pending = self._pending.get(chain_id)
        if pending is not None:
            source = pending.diff
        else:
            key = self.meta.state().snapshots.get(chain_id)
            found = self.snapshotter.ids().get(key or "")
            if found is None:
                raise StoreError("snapshot %s is missing from %s" % (chain_id, self.layout.metadata_db))
            source = self.layout.snapshot(found) / "fs"
        copy_tree(source, staged.diff)
        return staged

    def prepare_layer(
        self, staged: StagedSnapshot, chain_id: str, diff_id: str, parent: str | None, size: int, blob_digest: str
    ) -> None:
        staged.chain_id, staged.parent, staged.blob_digest = chain_id, parent, blob_digest
        staged.usage = usage(staged.diff)

    @contextmanager
    def committing(self, record_blobs: bool) -> Iterator[None]:
        with self.lock():
            self.layout.prepare_store()
            self._commit = _Commit(self.meta.state())
            try:
                yield
                self._write(self._commit)
            finally:
                self._commit = None
                self._pending = {}

    def commit_layer(self, staged: StagedSnapshot, chain_id: str, parent: str | None) -> bool:
        commit = self._current()
        if staged.blob is not None and staged.blob.exists():
            commit.blobs.append((staged.blob, staged.blob_digest))
        if chain_id in commit.state.snapshots or chain_id in self._pending:
            return False
        commit.layers.append(staged)
        self._pending[chain_id] = staged
        return True

    def record_blobs(self, entries: Sequence[tuple[str, str, str]]) -> None:
        if entries:
            self._current().source = entries[0][2]

    def put_image(self, image: ResolvedImage) -> str:
        self._current().image = image
        return image.config_digest

    def tag(self, references: Sequence[tuple[str, str, str]], image: ResolvedImage) -> None:
        keys = [key for _, key, _ in references]
        tags = [key for key in keys if "@" not in key]
        self._current().names = [parse_reference(key).full_string() for key in (tags or keys)]
        self._current().image = image

    def link_parents(self, parents: dict[str, str]) -> None:
        """containerd has no parent images."""

    def _current(self) -> _Commit:
        if self._commit is None:
            raise RuntimeError("not inside ContainerdStore.committing()")
        return self._commit

    def _write(self, commit: _Commit) -> None:
        """The commit, in the crash-safe order of the module docstring."""
        image = commit.image
        assert image is not None
        self._check_reused(image, commit)
        for staged_blob, digest in commit.blobs:
            self.content.publish(staged_blob, digest)
        manifest_digest = "sha256:" + hashlib.sha256(image.manifest_bytes).hexdigest()
        small = [(manifest_digest, image.manifest_bytes), (image.config_digest, image.config_bytes)]
        if image.index_bytes is not None:
            small.append((image.manifest_digest, image.index_bytes))
        small += image.other_blobs
        for digest, data in small:
            self.content.put(digest, data)
        self.content.sync()

        base = commit.state.sequence
        keys = {chain: key for chain, key in commit.state.snapshots.items()}
        for number, staged in enumerate(commit.layers, start=1):
            keys[staged.chain_id] = "%s/%d/%s" % (self.namespace, base + 2 * number, staged.chain_id)
        labels = {staged.chain_id: self._snapshot_labels(staged.chain_id, image, commit) for staged in commit.layers}
        ids = self.snapshotter.record([
            NewSnapshot(
                keys[staged.chain_id],
                keys[staged.parent] if staged.parent is not None else None,
                staged.usage or usage(staged.diff),
                labels[staged.chain_id],
            )
            for staged in commit.layers
        ])
        for staged, snapshot_id in zip(commit.layers, ids):
            self.snapshotter.publish(staged.dir, snapshot_id)
        if commit.layers:
            self.snapshotter.sync()

        changes = MetaChanges(
            contents=self._content_records(image, manifest_digest, {staged.chain_id for staged in commit.layers}),
            snapshots=[
                SnapshotRecord(staged.chain_id, keys[staged.chain_id], staged.parent, labels[staged.chain_id])
                for staged in commit.layers
            ],
            images=[ImageRecord(name, *self._target(image, manifest_digest)) for name in commit.names],
            source=self._source_label(image, commit.source),
            sequence=base + 2 * len(commit.layers),
        )
        self.meta.commit(changes, self.dialect.schema)

    def _check_reused(self, image: ResolvedImage, commit: _Commit) -> None:
        """Every layer this pull planned to reuse still has its snapshot and blob now, under the lock
        (a concurrent `rmi` may have collected them since the plan): else refuse before writing."""
        staged_chains = {staged.chain_id for staged in commit.layers}
        staged_blobs = {digest for _, digest in commit.blobs}
        chains = chain_ids(parse_image_config(image.config_bytes).diff_ids)
        for chain, layer in zip(chains, image.layers):
            if chain not in staged_chains and chain not in commit.state.snapshots:
                raise StoreError("snapshot %s, which this pull reuses, was removed meanwhile (a concurrent rmi?): pull again" % chain)
            if layer.digest not in staged_blobs and not self.content.has(layer.digest):
                raise StoreError("blob %s, which this pull reuses, was removed meanwhile (a concurrent rmi?): pull again" % layer.digest)

    def _target(self, image: ResolvedImage, manifest_digest: str) -> tuple[str, str, int]:
        if image.index_bytes is not None and image.index_media_type is not None:
            return image.manifest_digest, image.index_media_type, len(image.index_bytes)
        return manifest_digest, image.manifest.media_type, len(image.manifest_bytes)

    def _source_label(self, image: ResolvedImage, repository: str | None) -> tuple[str, str] | None:
        """containerd.io/distribution.source.<host without port> = <path>, for a pull from a registry."""
        if repository is None:
            return None
        ref = image.reference
        host, _, port = ref.domain.rpartition(":")
        if not host or not port.isdigit():
            host = ref.domain
        return SOURCE_LABEL + host, ref.path

    def _content_records(self, image: ResolvedImage, manifest_digest: str, new_chains: set[str]) -> list[ContentRecord]:
        """Index, manifests, configs and layers, labelled as containerd's pull labels them; a layer
        whose snapshot was there is not gone through by 2.x (its unpacker skips the fetch)."""
        diff_ids = parse_image_config(image.config_bytes).diff_ids
        chains = chain_ids(diff_ids)
        records = []
        if image.index_bytes is not None:
            index = parse_manifest(image.index_bytes, image.index_media_type)
            assert isinstance(index, ImageIndex)
            records.append(ContentRecord(image.manifest_digest, len(image.index_bytes), _child_labels(index.manifests)))
            manifests = {entry.digest for entry in index.manifests}
            for digest, data in image.other_blobs:
                labels: dict[str, str] = {}
                if digest in manifests:
                    other = parse_manifest(data, None)
                    if isinstance(other, ImageManifest):
                        labels = _child_labels(other.layers, other.config)
                records.append(ContentRecord(digest, len(data), labels))
        records.append(ContentRecord(manifest_digest, len(image.manifest_bytes), _child_labels(image.layers, image.manifest.config)))
        config_labels = {"containerd.io/gc.ref.snapshot.%s" % SNAPSHOTTER: chains[-1]} if chains else {}
        records.append(ContentRecord(image.config_digest, len(image.config_bytes), config_labels))
        seen = set()
        for desc, diff_id, chain in zip(image.layers, diff_ids, chains):
            if desc.digest not in seen:
                seen.add(desc.digest)
                touched = self.dialect.touches_unpacked_layers or chain in new_chains
                records.append(ContentRecord(desc.digest, desc.size, {"containerd.io/uncompressed": diff_id}, touched))
        return records

    def _snapshot_labels(self, chain_id: str, image: ResolvedImage, commit: _Commit) -> dict[str, str]:
        labels = {}
        if self.namespace == DOCKER_NAMESPACE:
            labels.update(self._cri_labels(chain_id, image, commit))
        if self.dialect.snapshot_ref:
            labels["containerd.io/snapshot.ref"] = chain_id
        return labels

    def _cri_labels(self, chain_id: str, image: ResolvedImage, commit: _Commit) -> dict[str, str]:
        """Docker's containerd store: the image reference, manifest and layer blobs from this one up."""
        chains = chain_ids(parse_image_config(image.config_bytes).diff_ids)
        position = chains.index(chain_id)
        digests = [desc.digest for desc in image.layers[position:]]
        key = CRI + "image-layers"
        value = ""
        for digest in digests:
            longer = digest if not value else value + "," + digest
            if len(key) + len(longer) > MAX_LABEL:
                break
            value = longer
        manifest_digest = "sha256:" + hashlib.sha256(image.manifest_bytes).hexdigest()
        return {
            CRI + "image-ref": commit.names[0] if commit.names else image.reference.full_string(),
            key: value,
            CRI + "layer-digest": image.layers[position].digest,
            CRI + "manifest-digest": manifest_digest,
        }


def _child_labels(children: Sequence[Descriptor], config: Descriptor | None = None) -> dict[str, str]:
    """The gc.ref labels of a blob's children: its config `config`, manifests `m.<n>`, layers
    `l.<n>`, anything else (an attestation's statement) `<n>`; each kind numbered on its own."""
    labels = {GC_CONTENT + "config": config.digest} if config is not None else {}
    counts: dict[str, int] = {}
    for child in children:
        prefix = "m." if child.media_type in MANIFEST_TYPES + INDEX_TYPES else "l." if child.media_type in LAYER_TYPES else ""
        number = counts.get(prefix, 0)
        counts[prefix] = number + 1
        labels[GC_CONTENT + prefix + str(number)] = child.digest
    return labels
