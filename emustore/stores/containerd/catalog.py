"""The images of a containerd namespace as ctr sees them, read from meta.db and the content store.

Per image: its record (name, target, labels, times); the walk from its target as `ctr images ls`
sizes it (the target, the manifests of this machine's platform, their configs and layers); the
platforms it names (every manifest of an index; a manifest's config); what `ctr images check`
says (config and layers present, the top snapshot unpacked); and its layers with their snapshots.
Blobs are read bounded and verified (ContentStore.get); a missing or unreadable one is reported,
never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emustore import safejson
from emustore.errors import EmustoreError, NoSuchImage, StoreError
from emustore.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from emustore.platform import best_match, host_platform, matches
from emustore.reference import parse_reference
from emustore.stores.containerd.content import ContentStore
from emustore.stores.containerd.layout import ContainerdRoot
from emustore.stores.containerd.metadata import MetaDB, NamespaceRecords, StoredImage
from emustore.stores.containerd.snapshots import Snapshotter
from emustore.stores.docker.goconfig import GoTime
from emustore.stores.docker.layerdb import chain_ids

ATTESTATION_KEY = "vnd.docker.reference.type"


@dataclass(frozen=True)
class Layer:
    descriptor: Descriptor
    present: bool  # the blob has a record in the namespace and is in the content store
    diff_id: str | None
    chain_id: str | None
    snapshot_key: str | None  # the snapshotter's key, when the namespace has the snapshot
    snapshot_id: int | None


@dataclass
class ImageView:
    image: StoredImage
    platforms: list[str] = field(default_factory=list)
    size: int | None = None  # what `ctr images ls` shows as SIZE; None when a blob it needs is missing
    manifest: Descriptor | None = None  # the manifest of this machine's platform
    config: Descriptor | None = None
    config_present: bool = False
    layers: list[Layer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    created: int | None = None  # the config's `created`, in Unix seconds
    unpacked_size: int = 0  # the snapshotter's recorded sizes of the layers' snapshots

    @property
    def docker_size(self) -> int | None:
        """What Docker 28's `docker images` shows with its containerd store: the platform manifest,
        config and layers, plus the unpacked snapshots (observed; the index is not counted)."""
        if self.manifest is None or self.config is None:
            return None
        blobs = self.manifest.size + self.config.size + sum(layer.descriptor.size for layer in self.layers)
        return blobs + self.unpacked_size

    @property
    def required(self) -> list[tuple[Descriptor, bool]]:
        """What `ctr images check` counts: the config and the layers, each with its presence."""
        found = [(self.config, self.config_present)] if self.config is not None else []
        return found + [(layer.descriptor, layer.present) for layer in self.layers]

    @property
    def status(self) -> str:
        """"complete", "incomplete" (some config or layer missing) or "missing" (no manifest)."""
        if self.manifest is None or self.config is None:
            return "missing"
        return "complete" if all(present for _, present in self.required) else "incomplete"

    @property
    def unpacked(self) -> bool:
        return bool(self.layers) and all(layer.snapshot_key is not None for layer in self.layers)


class ContainerdCatalog:
    """One namespace of a containerd root, read once."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.layout = ContainerdRoot(Path(root).absolute())
        if not self.layout.root.is_dir():
            raise StoreError("no containerd root at %s" % self.layout.root)
        self.namespace = namespace
        self.content = ContentStore(self.layout)
        meta = MetaDB(self.layout.meta_db, namespace)
        records = meta.records()
        # containerd 2.x (schema 4) leaves attestation manifests out of an image's platforms
        self.skips_attestations = (meta.schema() or 0) >= 4
        self.records = records.get(namespace) or NamespaceRecords(namespace, {}, {}, {}, [], frozenset())
        try:
            recorded = Snapshotter(self.layout).state().records
        except ValueError as error:
            raise StoreError("%s: %s" % (self.layout.metadata_db, error)) from None
        self.snapshot_ids = {key: info.id for key, info in recorded.items()}
        self.snapshot_sizes = {key: info.size for key, info in recorded.items()}

    def names(self) -> list[str]:
        """Image names in containerd's order (bytewise, as its List returns them)."""
        return sorted(self.records.images, key=str.encode)

    def resolve(self, text: str) -> StoredImage:
        """The image named `text` exactly, else by its fully qualified form (busybox → docker.io/library/busybox:latest)."""
        found = self.records.images.get(text)
        if found is None:
            try:
                found = self.records.images.get(parse_reference(text).full_string())
            except EmustoreError:
                found = None
        if found is None:
            raise NoSuchImage("%s (namespace %s)" % (text, self.namespace))
        return found

    def view(self, image: StoredImage) -> ImageView:
        view = ImageView(image)
        target = Descriptor(image.media_type, image.digest, image.size)
        parsed = self._manifest(target, view)
        if isinstance(parsed, ImageIndex):
            view.size = image.size
            view.platforms = sorted({
                _platform_text(entry.platform) for entry in parsed.manifests
                if entry.platform and not (self.skips_attestations and _is_attestation(entry))
            })
            host = host_platform()
            wanted = [entry for entry in parsed.manifests if entry.platform is None or matches(host, entry.platform)]
            chosen = best_match(host, [entry.platform for entry in parsed.manifests])
            for entry in wanted:
                manifest = self._manifest(entry, view)
                if isinstance(manifest, ImageManifest):
                    view.size = _add(view.size, entry.size + _blob_sizes(manifest))
                else:
                    view.size = None
                if chosen is not None and entry is parsed.manifests[chosen] and isinstance(manifest, ImageManifest):
                    self._fill(view, entry, manifest)
        elif isinstance(parsed, ImageManifest):
            view.size = image.size + _blob_sizes(parsed)
            self._fill(view, target, parsed)
            config = self._config(parsed.config)
            if config is not None:
                view.platforms = [_platform_text(config)]
        return view

    def _fill(self, view: ImageView, manifest_descriptor: Descriptor, manifest: ImageManifest) -> None:
        view.manifest = manifest_descriptor
        view.config = manifest.config
        view.config_present = self._present(manifest.config.digest)
        config = self._config(manifest.config)
        created = config.get("created") if config is not None else None
        try:
            view.created = GoTime.parse(created).unix if isinstance(created, str) else None
        except ValueError:
            view.created = None
        rootfs = config.get("rootfs") if config is not None else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        diffs = [d for d in diff_ids if isinstance(d, str)] if isinstance(diff_ids, list) else []
        if len(diffs) != len(manifest.layers):
            diffs = []
            view.problems.append("config %s: its diff ids do not match the manifest's layers" % manifest.config.digest)
        chains = chain_ids(diffs) if diffs else []
        for index, layer in enumerate(manifest.layers):
            chain = chains[index] if chains else None
            snapshot = self.records.snapshots.get(chain) if chain is not None else None
            view.unpacked_size += self.snapshot_sizes.get(snapshot.key, 0) if snapshot is not None else 0
            view.layers.append(Layer(
                layer, self._present(layer.digest), diffs[index] if diffs else None, chain,
                snapshot.key if snapshot is not None else None,
                self.snapshot_ids.get(snapshot.key) if snapshot is not None else None,
            ))

    def _present(self, digest: str) -> bool:
        return digest in self.records.contents and self.content.has(digest)

    def _manifest(self, descriptor: Descriptor, view: ImageView) -> ImageManifest | ImageIndex | None:
        data = self.content.get(descriptor.digest)
        if data is None:
            view.problems.append("%s: blob missing or unreadable" % descriptor.digest)
            return None
        try:
            return parse_manifest(data, descriptor.media_type or None)
        except EmustoreError as error:
            view.problems.append("%s: %s" % (descriptor.digest, error))
            return None

    def _config(self, descriptor: Descriptor) -> dict[str, Any] | None:
        data = self.content.get(descriptor.digest)
        try:
            doc = safejson.loads(data) if data is not None else None
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None


def document(catalog: ContainerdCatalog, view: ImageView) -> dict[str, Any]:
    """An image as JSON: its record, the walk from its target, `ctr images check`'s verdict, and
    each layer with its snapshot (no engine prints this; the keys are ours, docs/containerd-store.md)."""
    image = view.image

    def descriptor(found: Descriptor | None) -> dict[str, Any] | None:
        return {"mediaType": found.media_type, "digest": found.digest, "size": found.size} if found else None

    return {
        "Name": image.name,
        "Namespace": catalog.namespace,
        "Target": descriptor(Descriptor(image.media_type, image.digest, image.size)),
        "Labels": dict(sorted(image.labels.items())),
        "CreatedAt": image.created,
        "UpdatedAt": image.updated,
        "Platforms": view.platforms,
        "Size": view.size,
        "Manifest": descriptor(view.manifest),
        "Config": descriptor(view.config),
        "Layers": [
            {
                **(descriptor(layer.descriptor) or {}),
                "present": layer.present,
                "diffID": layer.diff_id,
                "chainID": layer.chain_id,
                "snapshot": None if layer.snapshot_key is None else {
                    "key": layer.snapshot_key,
                    "id": layer.snapshot_id,
                    "path": str(catalog.layout.snapshot(layer.snapshot_id)) if layer.snapshot_id is not None else None,
                },
            }
            for layer in view.layers
        ],
        "Check": {
            "status": view.status,
            "present": sum(1 for _, present in view.required if present),
            "required": len(view.required),
            "presentSize": sum(found.size for found, present in view.required if present),
            "requiredSize": sum(found.size for found, _ in view.required),
            "unpacked": view.unpacked,
        },
        "Problems": view.problems,
    }


def _is_attestation(entry: Descriptor) -> bool:
    """A BuildKit attestation manifest (observed with platform unknown/unknown and this annotation:
    which of the two containerd 2.1 goes by was not told apart)."""
    return entry.annotations.get(ATTESTATION_KEY) == "attestation-manifest" or (entry.platform or {}).get("os") == "unknown"


def _add(total: int | None, size: int) -> int | None:
    return total + size if total is not None else None


def _blob_sizes(manifest: ImageManifest) -> int:
    return manifest.config.size + sum(layer.size for layer in manifest.layers)


def _platform_text(platform: dict[str, Any]) -> str:
    """containerd's platform format: os/architecture[/variant], as written."""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(part for part in parts if isinstance(part, str) and part) or "unknown"
