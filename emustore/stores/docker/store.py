"""The Docker data root as one object: staging, the lock, and registration of layers and images."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from emustore.digest import is_hex64
from emustore.engines import DEFAULT, Dialect
from emustore.fsutil import copy_tree, ensure_dir, remove_tree, root_lock
from emustore.layers.tarsplit import append_empty_segment
from emustore.sources.base import ResolvedImage
from emustore.stores.docker.distribution import DistributionMetadata
from emustore.stores.docker.imagedb import ImageDB
from emustore.stores.docker.layerdb import LayerDB, LayerRecord
from emustore.stores.docker.layout import DataRoot
from emustore.stores.docker.ownership import check_not_owned
from emustore.stores.docker.overlay2 import Overlay2, new_cache_id
from emustore.stores.docker.references import ReferenceStore
from emustore.stores.docker.staging import StagingSet, abandoned, temp_files, writing

if TYPE_CHECKING:
    from emustore.layers.pipeline import UnpackOptions



WRITE_SET_SUFFIX = ".layerdb"


@dataclass(frozen=True)
class StagedLayer:
    """A layer extracted but not yet registered, in its pull's staging set: <cache-id>/diff/ and
    its tar-split beside it, then (once prepared) its layerdb files in <cache-id>.layerdb/."""

    dir: Path

    @property
    def cache_id(self) -> str:
        """The overlay2 id the layer gets at registration (drawn when it was staged)."""
        return self.dir.name

    @property
    def diff(self) -> Path:
        return self.dir / "diff"

    @property
    def tar_split(self) -> Path:
        return self.dir.parent / (self.dir.name + ".tar-split.json.gz")

    @property
    def blob(self) -> None:
        """dockerd keeps no blob: the layer's tar is reassembled from tar-split and diff."""
        return None

    @property
    def write_set(self) -> Path:
        """The layerdb directory-to-be (see DockerStore.prepare_record)."""
        return self.dir.parent / (self.dir.name + WRITE_SET_SUFFIX)


def uncommitted_layers(set_dir: Path) -> list[str]:
    """Cache ids whose layer dir left the set for overlay2/ while their write-set (renamed into
    layerdb/ last: the commit point) is still in it: published, never committed."""
    try:
        names = set(os.listdir(set_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    stems = [name.removesuffix(WRITE_SET_SUFFIX) for name in names if name.endswith(WRITE_SET_SUFFIX)]
    return sorted(stem for stem in stems if stem not in names and is_hex64(stem))


class DockerStore:
    """A Docker overlay2 data root, written in `dialect`'s way (engines.py)."""

    def __init__(self, root: Path, dialect: Dialect = DEFAULT) -> None:
        self.dialect = dialect
        self.layout = DataRoot(Path(root).absolute())
        self.layers = LayerDB(self.layout)
        self.overlay2 = Overlay2(self.layout)
        self.images = ImageDB(self.layout)
        self.references = ReferenceStore(self.layout)
        self.distribution = DistributionMetadata(self.layout)

    def refuse_if_owned(self, force: bool) -> None:
        """A RootInUse error when a running dockerd owns the root, unless `force`."""
        check_not_owned(self.layout.root, force)

    def lock(self) -> AbstractContextManager[None]:
        """The root's writer lock; take it only around registration and index updates."""
        self.layout.prepare_staging()
        return root_lock(self.layout.lock_file)

    # The Destination protocol (stores/destination.py), as a Docker overlay2 root answers it.

    @property
    def keeps_every_manifest(self) -> bool:
        return False

    def unpacking(self, options: UnpackOptions) -> UnpackOptions:
        return options  # dockerd's rules are the dialect's

    @property
    def configs(self) -> ImageDB:
        return self.images

    def has_image(self, image_id: str, top_chain_id: str | None) -> bool:
        """Present as dockerd sees it: the config verifies and its top layer (if any) is loadable."""
        return self.images.get(image_id) is not None and (top_chain_id is None or self.layers.exists(top_chain_id))

    def has_layer(self, chain_id: str, diff_id: str, blob_digest: str, by_distribution: bool) -> bool:
        """dockerd's skip rule: the chain is there and (for a pull) the blob maps to the diff id."""
        known = not by_distribution or self.distribution.diff_id_for(blob_digest) == diff_id
        return known and self.layers.exists(chain_id)

    def discard_staging(self) -> None:
        self.layout.remove_empty_staging()

    def stage_repeat(self, into: StagingSet, chain_id: str, reread: bool) -> StagedLayer:
        first = self.layers.read(chain_id)
        tar_split = self.layers.path(chain_id) / "tar-split.json.gz"
        as_read = reread or not self.dialect.tar_split_final_empty_segment  # 26 and later never add one
        return self.stage_copy(into, self.overlay2.diff_dir(first.cache_id), tar_split, as_read)

    def prepare_layer(
        self, staged: StagedLayer, chain_id: str, diff_id: str, parent: str | None, size: int, blob_digest: str
    ) -> None:
        self.prepare_record(staged, chain_id, diff_id, parent, size)

    @contextmanager
    def committing(self, record_blobs: bool) -> Iterator[None]:
        with self.lock():
            self.layout.prepare_store(distribution=record_blobs, engine_id=self.dialect.engine_id)
            yield

    def commit_layer(self, staged: StagedLayer, chain_id: str, parent: str | None) -> bool:
        return self.register_layer(staged, chain_id, parent)

    def record_blobs(self, entries: Sequence[tuple[str, str, str]]) -> None:
        self.distribution.record_pulls(list(entries))

    def put_image(self, image: ResolvedImage) -> str:
        return self.images.put(image.config_bytes)

    def tag(self, references: Sequence[tuple[str, str, str]], image: ResolvedImage | None = None) -> None:
        self.references.add(list(references))

    def link_parents(self, parents: dict[str, str]) -> None:
        with self.lock():
            for image_id, parent_id in parents.items():
                self.images.set_parent(image_id, parent_id)

    def staging(self, kind: str) -> AbstractContextManager[StagingSet]:
        """A staging set of our own for the block (staging.py), in a root made usable first (a
        StoreError says why it is not); what writers that are gone left is removed on the way."""
        return writing(self.layout, kind, self.remove_abandoned)

    def remove_abandoned(self) -> list[Path]:
        """Remove what dead writers left: their staging sets, the overlay2 dirs they published
        but never committed (a write-set still staged), and, if there was any such set, the temp
        files of atomic writes (under the lock: only its holder makes them). Live sets stay."""
        removed = []
        for path in abandoned(self.layout.staging):
            try:
                for cache_id in uncommitted_layers(path):
                    self.overlay2.remove(cache_id)
                remove_tree(path)
            except OSError:
                continue  # not ours to remove after all (say, another user's): fsck reports it
            removed.append(path)
        if removed:
            with self.lock():
                for temp in temp_files(self.layout):
                    try:
                        remove_tree(temp)
                    except OSError:
                        continue
                    removed.append(temp)
        return removed

    def stage(self, into: StagingSet) -> StagedLayer:
        """A fresh layer dir in the set `into` with an empty diff/ (0755) to extract into."""
        staged = StagedLayer(into.dir / new_cache_id())
        os.mkdir(staged.dir, 0o700)
        ensure_dir(staged.diff, 0o755)
        return staged

    def stage_copy(self, into: StagingSet, source_diff: Path, source_tar_split: Path, reread: bool = False) -> StagedLayer:
        """Stage a copy of an extracted layer, as dockerd registers a blob repeated in a manifest.

        With `reread` the tar-split stays as it is, as when dockerd reads the same bytes again (load)."""
        staged = self.stage(into)
        os.rmdir(staged.diff)
        copy_tree(source_diff, staged.diff)
        if reread:
            shutil.copyfile(source_tar_split, staged.tar_split)
        else:
            append_empty_segment(source_tar_split, staged.tar_split)
        return staged

    def discard(self, staged: StagedLayer) -> None:
        """Drop a staged layer now (one another writer registered first) rather than with its set."""
        for path in (staged.dir, staged.write_set, staged.tar_split):
            remove_tree(path)

    def prepare_record(self, staged: StagedLayer, chain_id: str, diff_id: str, parent: str | None, size: int) -> None:
        """Write the staged layer's layerdb files (synced) into its write-set, its tar-split moved
        there: no lock needed, so each layer does it as soon as it is verified."""
        record = LayerRecord(chain_id, diff_id, size, staged.cache_id, parent)
        self.layers.write_set(staged.write_set, record, staged.tar_split)

    def register_layer(self, staged: StagedLayer, chain_id: str, parent: str | None) -> bool:
        """Publish a prepared layer (the caller holds the lock and made the store's directories:
        layout.prepare_store); False if the chain id already existed."""
        parent_cache = self.layers.read(parent).cache_id if parent else None
        if self.layers.exists(chain_id):
            if parent_cache is not None:
                self.overlay2.mark_committed(parent_cache)
            self.discard(staged)
            return False
        self.overlay2.publish(staged.dir, staged.cache_id, parent_cache)
        try:
            self.layers.publish(staged.write_set, chain_id)
        except BaseException:
            self.overlay2.remove(staged.cache_id)
            raise
        return True
