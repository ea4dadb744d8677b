"""What a pull, a load and `pull --from` need from a store: the one seam where a kind of store plugs in.

As containers/image's ImageDestination: which image and layers (by chain id) it already has; where
to stage a layer; a layer's record prepared as soon as it is verified; then, under the store's
lock, layers committed in chain order, blob provenance, the image, its tags. The pipeline writes
each layer into a staged directory (`diff`, and the tar-split beside it) that the store owns.
The Docker overlay2 root implements it (stores/docker/store.py: DockerStore), and so does
containerd's image store (stores/containerd/store.py: ContainerdStore).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from emustore.layers.pipeline import UnpackOptions

from emustore.sources.base import ResolvedImage


class Staged(Protocol):
    """A layer being written: extracted into `diff`, its tar-split at `tar_split` (None: the store
    keeps none), its compressed blob kept at `blob` (None: not kept), notes in `dir`."""

    @property
    def dir(self) -> Path: ...

    @property
    def diff(self) -> Path: ...

    @property
    def tar_split(self) -> Path | None: ...

    @property
    def blob(self) -> Path | None: ...


class Staging(Protocol):
    """A writer's own staging area, removed with everything left in it when the writer is done."""

    @property
    def dir(self) -> Path: ...


class ConfigLookup(Protocol):
    def get(self, digest: str) -> bytes | None: ...


S = TypeVar("S", bound=Staging)
L = TypeVar("L", bound=Staged)


class Destination(Protocol[S, L]):
    """A store images are written into; `S` its staging areas, `L` its staged layers."""

    def refuse_if_owned(self, force: bool) -> None:
        """Raise (RootInUse) when the store's engine is running on it, unless `force`."""
        ...

    @property
    def keeps_every_manifest(self) -> bool:
        """Whether every manifest of an index (and its config) is stored, not only the platform's."""
        ...

    def unpacking(self, options: UnpackOptions) -> UnpackOptions:
        """`options` as this store's engine applies layers (its xattr rules)."""
        ...

    @property
    def configs(self) -> ConfigLookup:
        """Image configs the store holds, by image id (a warm pull does not download them again)."""
        ...

    def staging(self, kind: str) -> AbstractContextManager[S]:
        """A staging area of this writer (`kind`: pull, load) for the block; the store is checked
        usable first, and what dead writers left is cleaned up."""
        ...

    def discard_staging(self) -> None:
        """After a failed write: remove the staging dirs this left if they are empty."""
        ...

    def has_image(self, image_id: str, top_chain_id: str | None) -> bool:
        """The image is there as the engine sees it (config and its top layer)."""
        ...

    def has_layer(self, chain_id: str, diff_id: str, blob_digest: str, by_distribution: bool) -> bool:
        """The layer is there for a layer of blob `blob_digest` (`by_distribution`: a pull's rule,
        where the engine also knows the layer came from that blob; a load looks at less)."""
        ...

    def stage(self, into: S) -> L:
        """A fresh, empty layer to extract into."""
        ...

    def stage_repeat(self, into: S, chain_id: str, reread: bool) -> L:
        """A copy of the committed layer `chain_id` (a blob repeated in a manifest); `reread`: as
        when the engine reads the same bytes again (a load) rather than applies them again (a pull)."""
        ...

    def prepare_layer(
        self, staged: L, chain_id: str, diff_id: str, parent: str | None, size: int, blob_digest: str
    ) -> None:
        """The verified layer's record, written beside it (no lock needed); `blob_digest` is the
        blob it came from (kept at `staged.blob` when the store keeps blobs)."""
        ...

    def committing(self, record_blobs: bool) -> AbstractContextManager[None]:
        """The store's lock, its directories made, for the commits below."""
        ...

    def commit_layer(self, staged: L, chain_id: str, parent: str | None) -> bool:
        """Publish a prepared layer, in chain order (its parent first); False if it was there already."""
        ...

    def record_blobs(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """(diff id, blob digest, repository) of each layer, as a pull records where layers came from."""
        ...

    def put_image(self, image: ResolvedImage) -> str:
        """Store the image (its config; a store keeping manifests, those too); its image id."""
        ...

    def tag(self, references: Sequence[tuple[str, str, str]], image: ResolvedImage) -> None:
        """Set each (familiar repository, key, image id) of `image`."""
        ...

    def link_parents(self, parents: dict[str, str]) -> None:
        """Record image id → parent image id, as a load keeps the Parent links of an archive."""
        ...
