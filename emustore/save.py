"""`docker save`: images of a data root written as a docker-archive (or an OCI layout archive).

Each layer tar is reassembled from its tar-split.json.gz and diff dir, so its bytes (and sha256,
checked against the diff id while writing) are those the layer was pulled with, as dockerd's
own `docker save` gives them.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from emustore.digest import Hasher, match_id_prefix
from emustore.errors import InvalidReference, LayerError, NoSuchImage, StoreError
from emustore.imageconfig import parse_image_config
from emustore.layers.assemble import assemble, entry_size, tar_split_entries
from emustore.reference import Reference, parse_reference
from emustore.formats.archive import ArchiveImage, ArchiveLayer, ArchiveWriter
from emustore.formats.docker_archive import write_docker_archive
from emustore.formats.oci import write_oci_archive
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.references import lookup
from emustore.stores.docker.store import DockerStore

DOCKER, OCI = "docker", "oci"


@dataclass
class SavedImage:
    """One image to write, with the tags that name it in the archive (first-seen order)."""

    image_id: str
    tags: list[Reference] = field(default_factory=list)


def find_images(store: DockerStore, names: list[str]) -> list[SavedImage]:
    """Resolve `docker save` arguments: name:tag, name (every tag of it), name@digest, image id or prefix."""
    found: dict[str, SavedImage] = {}
    repos = store.references.load()

    def add(image_id: str, tag: Reference | None) -> None:
        if store.images.get(image_id) is None:
            raise NoSuchImage(image_id)
        saved = found.setdefault(image_id, SavedImage(image_id))
        if tag is not None and tag not in saved.tags:
            saved.tags.append(tag)

    for name in names:
        try:
            ref = parse_reference(name, default_tag=False)
        except InvalidReference:
            add(_image_id(store, name), None)
            continue
        keys = repos.get(ref.familiar_name, {})
        if ref.familiar_name == "sha256" or (ref.tag is None and ref.digest is None and not keys):
            add(_image_id(store, name), None)
            continue
        if ref.tag is None and ref.digest is None:  # every reference of the repository
            for key in sorted(keys):
                add(keys[key], None if "@" in key else parse_reference(key))
            continue
        image_id = lookup(repos, ref)
        if image_id is None:
            raise NoSuchImage(name)
        add(image_id, None if ref.digest else ref)
    return list(found.values())


def _image_id(store: DockerStore, text: str) -> str:
    """An image id from a full id or a unique hex prefix."""
    image_id = match_id_prefix(text, store.images.ids())
    if image_id is None:
        raise NoSuchImage(text)
    return image_id


@dataclass(frozen=True)
class _StoredLayer:
    """A layer of the root as an ArchiveLayer: its tar reassembled from tar-split and diff dir."""

    chain_id: str
    diff_id: str
    tar_split: Path
    diff_dir: Path

    @property
    def size(self) -> int:
        """The reassembled tar's length: raw segments plus file contents."""
        total = 0
        for entry in tar_split_entries(self.tar_split):
            if entry.get("type") == 2:
                total += len(base64.b64decode(str(entry.get("payload") or "")))
            else:
                total += entry_size(entry)
        return total

    def chunks(self) -> Iterator[bytes]:
        """The layer tar, verified against the diff id at its end."""
        hasher = Hasher()
        for chunk in assemble(self.tar_split, self.diff_dir):
            hasher.update(chunk)
            yield chunk
        actual = hasher.digest()
        if actual != self.diff_id:
            raise LayerError(f"layer {self.chain_id} reassembles to {actual}, not its diff id {self.diff_id}")


def _layers(store: DockerStore, diff_ids: list[str]) -> list[_StoredLayer]:
    layers = []
    for chain_id, diff_id in zip(chain_ids(diff_ids), diff_ids):
        record = store.layers.load(chain_id)
        if record is None:
            raise StoreError(f"layer {chain_id} of the image is missing from the root or unreadable")
        tar_split = store.layers.path(chain_id) / "tar-split.json.gz"
        if not tar_split.is_file():
            raise StoreError(f"layer {chain_id} has no tar-split.json.gz: its tar cannot be reassembled")
        layers.append(_StoredLayer(chain_id, diff_id, tar_split, store.overlay2.diff_dir(record.cache_id)))
    return layers


def save(root: str | os.PathLike[str], names: list[str], out: IO[bytes], fmt: str = DOCKER) -> list[SavedImage]:
    """Write the images `names` resolve to in `root` to `out` as one archive (formats/)."""
    store = DockerStore(Path(root))
    images = find_images(store, names)
    write_archive([_archive_image(store, saved) for saved in images], out, fmt)
    return images


def write_archive(archived: list[ArchiveImage], out: IO[bytes], fmt: str = DOCKER) -> None:
    """Archive images (of any store) to `out` as a docker-archive or an OCI archive."""
    writer = ArchiveWriter(out)
    if fmt == OCI:
        write_oci_archive(archived, writer)
    else:
        write_docker_archive(archived, writer)
    writer.close()


def _archive_image(store: DockerStore, saved: SavedImage) -> ArchiveImage:
    config_bytes = store.images.get(saved.image_id)
    assert config_bytes is not None
    layers: list[ArchiveLayer] = list(_layers(store, parse_image_config(config_bytes).diff_ids))
    return ArchiveImage(saved.image_id, config_bytes, layers, saved.tags, store.images.parent(saved.image_id))


def save_to_path(root: str | os.PathLike[str], names: list[str], path: str | os.PathLike[str], fmt: str = DOCKER) -> list[SavedImage]:
    """save() into a file, published by rename only when complete."""
    return write_to_path(path, lambda out: save(root, names, out, fmt))


T = TypeVar("T")


def write_to_path(path: str | os.PathLike[str], write: Callable[[IO[bytes]], T]) -> T:
    """`write` into a temp file beside `path`, synced, renamed to it only when complete."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
