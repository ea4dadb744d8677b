"""Gathering the explain walk: every file on the way from a reference to the overlay2 dirs.

The walk reads the root as it is and never fails on a broken piece: a missing file is
recorded as None so the renderers can show where the chain breaks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import Digest, match_id_prefix
from emustore.errors import EmustoreError, NoSuchImage, StoreError
from emustore.explain.containers import ContainerStep, containers_of
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
    lower: list[LowerEntry]
    extras: list[str]  # work/, committed present
    blobs: list[str]  # blob digests distribution/ maps to this diff id


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

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)


def explain(root: str | os.PathLike[str], query: str) -> Walk:
    """Walk from `query` (a reference or an image id prefix) to the disk of `root`."""
    store = DockerStore(Path(root))
    if not store.layout.root.is_dir():
        raise StoreError("no data root at %s" % store.layout.root)
    repos = store.references.load()
    repository, key, image_id = _resolve(store, repos, query)
    keys = sorted(k for refs in repos.values() for k, v in refs.items() if v == image_id and k != key)
    config_path = store.images.path(image_id)
    data = config_path.read_bytes()
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
    )
    chains = chain_ids(config.diff_ids)
    links: dict[str, int] = {}
    for index, (diff_id, chain_id) in enumerate(zip(config.diff_ids, chains)):
        step = _layer(store, index, diff_id, chain_id, chains[index - 1] if index else None, links)
        walk.layers.append(step)
        if step.link_id:
            links[step.link_id] = index
    walk.containers = containers_of(store, image_id)
    return walk


def _resolve(store: DockerStore, repos: dict[str, dict[str, str]], query: str) -> tuple[str | None, str | None, str]:
    """(familiar repository, repositories.json key, image id), trying a reference first, then an id prefix."""
    is_id = _IMAGE_ID.fullmatch(query)
    if not (is_id and (query.startswith("sha256:") or len(query) == 64)):
        ref = parse_reference(query)
        key = lookup_key(ref)
        image_id = lookup(repos, ref)
        if image_id is not None:
            if store.images.get(image_id) is None:
                raise StoreError("%s points at %s, which is missing or does not verify" % (key, image_id))
            return ref.familiar_name, key, image_id
    image_id = match_id_prefix(query, store.images.ids())
    if image_id is not None and store.images.get(image_id) is not None:
        return None, None, image_id
    raise NoSuchImage(query)


def _layer(store: DockerStore, index: int, diff_id: str, chain_id: str, parent: str | None, links: dict[str, int]) -> LayerStep:
    layerdb_dir = store.layers.path(chain_id)
    files = store.layers.texts(chain_id)
    cache_id = (files["cache-id"] or "").strip() or None
    overlay_dir = store.overlay2.layer_dir(cache_id) if cache_id else None
    link_id = _read(overlay_dir / "link") if overlay_dir else None
    lower_text = _read(overlay_dir / "lower") if overlay_dir else None
    names = [element.removeprefix("l/") for element in lower_text.split(":")] if lower_text else []
    lower = [LowerEntry(name, _readlink(store.layout.links / name), links.get(name)) for name in names]
    tar_split = layerdb_dir / "tar-split.json.gz"
    return LayerStep(
        index=index,
        diff_id=diff_id,
        chain_id=chain_id,
        formula=None if parent is None else "%s %s" % (parent, diff_id),
        layerdb_dir=layerdb_dir,
        files=files,
        tar_split_bytes=tar_split.stat().st_size if tar_split.is_file() else None,
        overlay_dir=overlay_dir,
        link_id=link_id,
        link_target=_readlink(store.layout.links / link_id) if link_id else None,
        lower=lower,
        extras=[name for name in ("work/", "committed") if overlay_dir and (overlay_dir / name.rstrip("/")).exists()],
        blobs=[entry.get("Digest", "") for entry in _v2metadata(store, diff_id)],
    )


def _v2metadata(store: DockerStore, diff_id: str) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for entry in store.distribution.v2metadata(diff_id):
        if isinstance(entry, dict) and entry.get("Digest") not in [e.get("Digest") for e in seen]:
            seen.append(entry)
    return seen


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
