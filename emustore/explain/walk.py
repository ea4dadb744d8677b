"""Gathering the explain walk of a Docker overlay2 root (20.10, 26, 28): every file on the way
from a reference to the overlay2 dirs, then the files of the layers and the container mount.

The walk reads the root as it is and never fails on a broken piece: a missing file is
recorded as None so the renderers can show where the chain breaks. Every metadata file is read
bounded and without following a link; an id becomes a path only when it has the form dockerd
gives it. Another kind of store plugs in by producing a `Walk` of its own: the layer files
(tree.py, changes.py) and the renderers only need the diff dirs, base first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import Digest, hex_of, is_hex64, match_id_prefix
from emustore.errors import EmustoreError, NoSuchImage, StoreError
from emustore.explain.changes import ImageFiles, analyse
from emustore.explain.containers import ContainerStep, bounded, containers_of, read_small, rootless
from emustore.explain.mount import LookMount, OverlayMount, new_container_mount
from emustore.explain.tree import Budget, read_layer
from emustore.fsck.findings import MAX_READ, is_real_dir, is_regular
from emustore.imageconfig import parse_image_config
from emustore.reference import parse_reference
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.references import lookup, lookup_key
from emustore.stores.docker.store import DockerStore

_IMAGE_ID = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")


@dataclass(frozen=True)
class LowerEntry:
    """One `l/<LINKID>` element of a `lower` file and where its symlink leads."""

    link_id: str
    target: str | None  # readlink of overlay2/l/<LINKID>, None when missing
    layer_index: int | None  # which layer of this image owns that link


@dataclass
class LayerStep:
    """One layer: its ids, its layerdb files and its overlay2 dir."""

    index: int
    diff_id: str
    chain_id: str
    formula: str | None  # the text hashed to get the chain id (None for the base layer)
    layerdb_dir: Path
    files: dict[str, str | None]  # diff, size, cache-id, parent: content or None
    tar_split_bytes: int | None
    overlay_dir: Path | None
    link_id: str | None
    link_target: str | None
    lower_text: str | None  # the `lower` file as it is
    lower: list[LowerEntry]
    extras: list[str]  # work/, committed present
    blobs: list[str]  # blob digests distribution/ maps to this diff id

    @property
    def diff_dir(self) -> Path | None:
        """overlay2/<cache-id>/diff when both are real directories."""
        if self.overlay_dir is None or not is_real_dir(self.overlay_dir):
            return None
        diff = self.overlay_dir / "diff"
        return diff if is_real_dir(diff) else None

    @property
    def size(self) -> int | None:
        """The layerdb `size` (dockerd's count of the diff's bytes)."""
        text = (self.files.get("size") or "").strip()
        return int(text) if text.isdigit() else None


@dataclass
class Walk:
    """Everything `explain` shows, with paths relative to `root`."""

    root: Path
    query: str
    repository: str | None
    reference_key: str | None
    other_keys: list[str]
    image_id: str
    config_path: Path
    config_size: int
    config_sha256: str
    created: str | None
    diff_ids: list[str]
    layers: list[LayerStep] = field(default_factory=list)
    containers: list[ContainerStep] = field(default_factory=list)
    files: ImageFiles | None = None
    mount: OverlayMount | None = None  # what a new container of the image gets mounted
    look: LookMount | None = None  # the image mounted read-only to look at it
    userxattr: bool = False  # opaque dirs marked user.overlay.opaque: a rootless daemon's mount
    engine_id: str | None = None  # <root>/engine-id: Docker 26/28 write it at start, 20.10 does not

    @property
    def total_size(self) -> int:
        return sum(layer.size or 0 for layer in self.layers)

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)


def explain(root: str | os.PathLike[str], query: str) -> Walk:
    """Walk from `query` (a reference or an image id prefix) to the disk of `root`."""
    store = DockerStore(Path(root))
    if not store.layout.root.is_dir():
        raise StoreError("no data root at %s" % store.layout.root)
    repositories = store.layout.repositories_json
    if os.path.lexists(repositories) and not bounded(repositories):
        raise StoreError("%s: not a regular file of at most %d bytes" % (repositories, MAX_READ))
    repos = store.references.load()
    repository, key, image_id = _resolve(store, repos, query)
    keys = sorted(k for refs in repos.values() for k, v in refs.items() if v == image_id and k != key)
    config_path = store.images.path(image_id)
    data = _config(store, image_id)
    if data is None:
        raise StoreError("%s: unreadable" % config_path)
    try:
        config = parse_image_config(data)
    except EmustoreError as exc:
        raise StoreError("%s: %s" % (config_path, exc)) from None
    walk = Walk(
        root=store.layout.root,
        query=query,
        repository=repository,
        reference_key=key,
        other_keys=keys,
        image_id=image_id,
        config_path=config_path,
        config_size=len(data),
        config_sha256=Digest.of_bytes(data),
        created=config.created,
        diff_ids=config.diff_ids,
        engine_id=(read_small(store.layout.root / "engine-id") or "").strip() or None,
    )
    chains = chain_ids(config.diff_ids)
    links: dict[str, int] = {}
    for index, (diff_id, chain_id) in enumerate(zip(config.diff_ids, chains)):
        step = _layer(store, index, diff_id, chain_id, chains[index - 1] if index else None, links)
        walk.layers.append(step)
        if step.link_id:
            links[step.link_id] = index
    budget = Budget()
    image_files = [read_layer(layer.diff_dir, budget) for layer in walk.layers]
    walk.files = analyse(image_files)
    walk.userxattr = rootless(walk.files)
    walk.containers = containers_of(store, image_id, walk.userxattr)
    for container in walk.containers:
        own = [read_layer(diff, budget) for diff in container.diff_dirs()]
        container.files[:] = analyse(image_files + own).layers[len(image_files):]
    top = walk.layers[-1] if walk.layers else None
    if top is not None and top.link_id and top.overlay_dir is not None:
        home = str(store.layout.overlay2)
        walk.mount = new_container_mount(home, top.link_id, top.lower_text, walk.userxattr)
        walk.look = LookMount(home, top.overlay_dir.name + "/diff", top.lower_text, walk.userxattr)
    return walk


def _resolve(store: DockerStore, repos: dict[str, dict[str, str]], query: str) -> tuple[str | None, str | None, str]:
    """(familiar repository, repositories.json key, image id), trying a reference first, then an id prefix."""
    is_id = _IMAGE_ID.fullmatch(query)
    if not (is_id and (query.startswith("sha256:") or len(query) == 64)):
        ref = parse_reference(query)
        key = lookup_key(ref)
        image_id = lookup(repos, ref)
        if image_id is not None:
            if _config(store, image_id) is None:
                raise StoreError("%s points at %s, which is missing or does not verify" % (key, image_id))
            return ref.familiar_name, key, image_id
    image_id = match_id_prefix(query, store.images.ids())
    if image_id is not None and _config(store, image_id) is not None:
        return None, None, image_id
    raise NoSuchImage(query)


def _layer(store: DockerStore, index: int, diff_id: str, chain_id: str, parent: str | None, links: dict[str, int]) -> LayerStep:
    layerdb_dir = store.layers.path(chain_id)
    files = {name: read_small(layerdb_dir / name) for name in ("diff", "size", "cache-id", "parent")}
    cache_id = (files["cache-id"] or "").strip()
    overlay_dir = store.overlay2.layer_dir(cache_id) if is_hex64(cache_id) else None
    link_id = read_small(overlay_dir / "link") if overlay_dir else None
    lower_text = read_small(overlay_dir / "lower") if overlay_dir else None
    names = [element.removeprefix("l/") for element in lower_text.split(":")] if lower_text else []
    lower = [LowerEntry(name, _readlink(store.layout.links, name), links.get(name)) for name in names]
    tar_split = layerdb_dir / "tar-split.json.gz"
    return LayerStep(
        index=index,
        diff_id=diff_id,
        chain_id=chain_id,
        formula=None if parent is None else "%s %s" % (parent, diff_id),
        layerdb_dir=layerdb_dir,
        files=files,
        tar_split_bytes=os.lstat(tar_split).st_size if is_regular(tar_split) else None,
        overlay_dir=overlay_dir,
        link_id=link_id,
        link_target=_readlink(store.layout.links, link_id) if link_id else None,
        lower_text=lower_text,
        lower=lower,
        extras=[name for name in ("work/", "committed") if overlay_dir and (overlay_dir / name.rstrip("/")).exists()],
        blobs=[entry.get("Digest", "") for entry in _v2metadata(store, diff_id)],
    )


def _config(store: DockerStore, image_id: str) -> bytes | None:
    """The image config as ImageDB.get gives it (verified), when it is a bounded regular file."""
    return store.images.get(image_id) if bounded(store.images.path(image_id)) else None


def _v2metadata(store: DockerStore, diff_id: str) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    if not bounded(store.layout.v2metadata_by_diffid / hex_of(diff_id)):
        return seen
    for entry in store.distribution.v2metadata(diff_id):
        if isinstance(entry, dict) and entry.get("Digest") not in [e.get("Digest") for e in seen]:
            seen.append(entry)
    return seen


def _readlink(links: Path, name: str) -> str | None:
    """The target of l/<name>, for a plain name only (an id never leads elsewhere)."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return None
    try:
        return os.readlink(links / name)
    except OSError:
        return None
