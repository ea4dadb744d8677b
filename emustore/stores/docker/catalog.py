"""A read model of a Docker 20.10 overlay2 data root: the layers and images dockerd would load.

This is the stable API for every reader of a root (images, inspect, rmi, du, fsck):

* `Catalog(root).layers()` – chain id → `LayerRecord` for every layer dockerd loads at start (`LayerDB.load`,
  §5.3: required files readable, `size` an integer, parent loadable, `-removing` dirs ignored).
* `Catalog(root).images()` – `CatalogImage` for every image dockerd restores (§4: the config
  verifies and decodes, its top chain is a loaded layer), newest first.
* `Catalog(root).resolve(text)` – the image a name, digest reference, id or id prefix means,
  as `docker image inspect`/`rmi` look it up; `NoSuchImage` otherwise.
* `Catalog(root).containers()` – the containers' image ids (containers/*/config.v2.json);
  `mount_parents()` – the chain ids container layers sit on (`LayerDB.mounts`).
* `heads()`, `children(id)` – images without children / whose metadata `parent` is `id`;
  `layer_chain(chain)`, `chain_size(chain)` – a layer with its ancestors, and their size sum.
* `require_data_root(root)` – the DataRoot of an existing directory, else an EmustoreError.

A Catalog reads the tree once, lazily; make a new one after changing the root.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from emustore.digest import is_digest, is_hex64, match_id_prefix, short_id
from emustore.errors import EmustoreError, NoSuchImage
from emustore.reference import Reference, parse_reference
from emustore.stores.docker.goconfig import ConfigTypeError, DecodedImage, GoTime, decode_image
from emustore.stores.docker.imagedb import ImageDB
from emustore.stores.docker.layerdb import LayerDB, LayerRecord, chain_ids
from emustore.stores.docker.layout import DataRoot
from emustore.stores.docker.references import ReferenceStore, Repositories, lookup



@dataclass(frozen=True)
class StoredReference:
    """One repositories.json entry: the key as stored and its parsed form."""

    key: str  # familiar form, e.g. "nginx:latest" or "nginx@sha256:…"
    repository: str  # familiar repository, the outer key
    reference: Reference

    @property
    def is_digest(self) -> bool:
        return self.reference.digest is not None


@dataclass(frozen=True)
class CatalogImage:
    """An image as dockerd lists it."""

    id: str
    raw_config: bytes
    decoded: DecodedImage
    chain_ids: tuple[str, ...]
    size: int  # sum of the chain's layerdb `size` files (docker's SIZE and VirtualSize)
    references: tuple[StoredReference, ...]  # sorted as dockerd sorts them (full name)
    parent: str | None  # imagedb/metadata/<id>/parent (builds, loads, commits; never pulls)
    last_tag_time: GoTime | None  # imagedb/metadata/<id>/lastUpdated, written by `docker tag`

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def top_chain_id(self) -> str | None:
        return self.chain_ids[-1] if self.chain_ids else None

    @property
    def repo_tags(self) -> list[str]:
        return [r.key for r in self.references if not r.is_digest]

    @property
    def repo_digests(self) -> list[str]:
        return [r.key for r in self.references if r.is_digest]

    @property
    def created(self) -> GoTime:
        return self.decoded.created

    @property
    def dangling(self) -> bool:
        """No tag (digest references alone leave an image dangling, as `docker images` shows)."""
        return not self.repo_tags


@dataclass(frozen=True)
class ContainerUse:
    """A container that holds an image (containers/<id>/config.v2.json)."""

    id: str
    image_id: str
    running: bool

    @property
    def short_id(self) -> str:
        return short_id(self.id)


class Catalog:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.layout = require_data_root(root)
        self.layerdb = LayerDB(self.layout)
        self.imagedb = ImageDB(self.layout)
        self._loaded: dict[str, LayerRecord | None] = {}  # chain id → the layer, or None: it does not load
        self._read: dict[str, CatalogImage | None] = {}  # image id → the image, or None: it does not load

    # layers: read as they are asked for (one image's chain, or all of them)

    def layers(self) -> dict[str, LayerRecord]:
        """Every layer dockerd loads at start, by chain id."""
        return self._layers

    @cached_property
    def _layers(self) -> dict[str, LayerRecord]:
        found = ((chain_id, self.layer(chain_id)) for chain_id in self.layerdb.chain_ids())
        return {chain_id: record for chain_id, record in found if record is not None}

    def layer(self, chain_id: str) -> LayerRecord | None:
        """The layer as dockerd loads it at start: its files valid and its whole parent chain
        loading (a missing parent or a cycle fails every layer above); None otherwise."""
        walked: list[tuple[str, LayerRecord | None]] = []
        seen: set[str] = set()
        current: str | None = chain_id
        loads = True
        while current is not None and current not in self._loaded:
            record = None if current in seen else self.layerdb.load(current)
            seen.add(current)
            walked.append((current, record))
            if record is None:
                loads = False
                break
            current = record.parent
        if loads and current is not None:
            loads = self._loaded[current] is not None
        for walked_id, record in walked:  # a chain: each layer loads only if the ones above it do
            self._loaded.setdefault(walked_id, record if loads else None)
        return self._loaded[chain_id]

    def layer_chain(self, chain_id: str) -> list[LayerRecord]:
        """The layer and its ancestors, top first (the layer must load)."""
        chain = []
        current: str | None = chain_id
        while current is not None:
            record = self.layer(current)
            assert record is not None, "a chain below a loaded layer loads"
            chain.append(record)
            current = record.parent
        return chain

    def chain_size(self, chain_id: str) -> int:
        """roLayer.Size(): the sum of `size` over the layer and its parents."""
        return sum(layer.size for layer in self.layer_chain(chain_id))

    # references

    @cached_property
    def repositories(self) -> Repositories:
        return ReferenceStore(self.layout).load()

    def references_of(self, image_id: str) -> tuple[StoredReference, ...]:
        """The references naming `image_id`, in dockerd's order (by full name)."""
        return self._references.get(image_id, ())

    @cached_property
    def _references(self) -> dict[str, tuple[StoredReference, ...]]:
        """image id → its references, from one pass over repositories.json."""
        named: dict[str, list[StoredReference]] = {}
        for repository, refs in self.repositories.items():
            for key, target in refs.items():
                parsed = _parse_key(key)
                if parsed is not None:
                    named.setdefault(target, []).append(StoredReference(key, repository, parsed))
        return {target: tuple(sorted(found, key=lambda r: r.reference.full_string())) for target, found in named.items()}

    # images

    def images(self) -> list[CatalogImage]:
        """Every image dockerd restores, newest first (ties by id)."""
        return sorted(self._images.values(), key=lambda i: (-i.created.unix, i.id))

    def image(self, image_id: str) -> CatalogImage | None:
        """The image dockerd restores under this id (its config verifies, its top layer loads)."""
        if image_id not in self._read:
            self._read[image_id] = self._read_image(image_id) if is_digest(image_id) else None
        return self._read[image_id]

    @cached_property
    def _images(self) -> dict[str, CatalogImage]:
        found = ((image_id, self.image(image_id)) for image_id in self.imagedb.ids())
        return {image_id: image for image_id, image in found if image is not None}

    def _read_image(self, image_id: str) -> CatalogImage | None:
        raw = self.imagedb.get(image_id)
        if raw is None:
            return None
        try:
            decoded = decode_image(json.loads(raw))
        except (ValueError, ConfigTypeError):
            return None
        chains = tuple(chain_ids(list(decoded.diff_ids)))
        if decoded.os != "linux" or (chains and self.layer(chains[-1]) is None):
            return None
        parent = self.imagedb.parent(image_id)
        last_updated = self.imagedb.last_updated(image_id)
        try:
            last_tag_time = GoTime.parse(last_updated) if last_updated else None
        except ConfigTypeError:
            last_tag_time = None
        return CatalogImage(
            id=image_id,
            raw_config=raw,
            decoded=decoded,
            chain_ids=chains,
            size=self.chain_size(chains[-1]) if chains else 0,
            references=self.references_of(image_id),
            parent=parent if parent and is_digest(parent) else None,
            last_tag_time=last_tag_time,
        )

    def children(self, image_id: str) -> list[CatalogImage]:
        """Images whose metadata names `image_id` as their parent."""
        return [image for image in self._images.values() if image.parent == image_id]

    def heads(self) -> list[CatalogImage]:
        """Images without children (what `docker images` lists without -a)."""
        parents = {image.parent for image in self._images.values()}
        return [image for image in self.images() if image.id not in parents]

    def resolve(self, text: str) -> CatalogImage:
        """The image `text` names, looked up like dockerd's GetImage.

        A 64-hex id or `sha256:<hex>` is an id; otherwise a reference (default tag "latest")
        looked up in repositories.json, then an unambiguous id prefix.
        """
        if is_hex64(text) or is_digest(text):
            image = self.image(text if text.startswith("sha256:") else "sha256:" + text)
            if image is None:
                raise NoSuchImage(text)
            return image
        ref = parse_reference(text, default_tag=False)
        target = lookup(self.repositories, ref)
        named = self.image(target) if target is not None else None
        if named is not None:
            return named
        image_id = match_id_prefix(text, self._images)
        if image_id is None:
            raise NoSuchImage(text)
        return self._images[image_id]

    # containers

    def containers(self) -> list[ContainerUse]:
        """Containers and the image each one uses (config.v2.json "Image" and "State.Running")."""
        found = []
        for config in sorted((self.layout.root / "containers").glob("*/config.v2.json")):
            try:
                doc = json.loads(config.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("Image"), str):
                state = doc["State"] if isinstance(doc.get("State"), dict) else {}
                found.append(ContainerUse(config.parent.name, doc["Image"], bool(state.get("Running"))))
        return found

    def mount_parents(self) -> list[str]:
        """Chain ids that container layers sit on (layerdb/mounts/*/parent); they hold layers."""
        return [mount.parent for mount in self.layerdb.mounts() if mount.parent]


def require_data_root(root: str | os.PathLike[str]) -> DataRoot:
    """The layout of an existing root; an error (and nothing created) when there is none."""
    layout = DataRoot(Path(root).absolute())
    if not layout.root.is_dir():
        raise EmustoreError("%s is not a directory (no Docker data root there)" % layout.root)
    return layout


def references_in(repositories: Repositories, image_id: str) -> tuple[StoredReference, ...]:
    """The entries of a repositories map naming `image_id`, sorted by full reference."""
    found = []
    for repository, refs in repositories.items():
        for key, target in refs.items():
            if target == image_id:
                parsed = _parse_key(key)
                if parsed is not None:
                    found.append(StoredReference(key, repository, parsed))
    return tuple(sorted(found, key=lambda r: r.reference.full_string()))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _parse_key(key: str) -> Reference | None:
    try:
        return parse_reference(key, default_tag=False)
    except EmustoreError:
        return None


