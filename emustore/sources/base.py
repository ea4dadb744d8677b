"""What every image source gives the pull pipeline: one resolved image and its layer streams."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Protocol

from emustore.manifest import Descriptor, ImageManifest
from emustore.reference import Reference


@dataclass(frozen=True)
class ResolvedImage:
    """One image picked for this platform; `manifest_digest` is the list/index digest when there is one,
    and then `index_bytes` are that list/index as fetched (a store keeping every blob stores it)."""

    reference: Reference
    repository: str
    manifest_digest: str
    manifest: ImageManifest
    manifest_bytes: bytes
    config_bytes: bytes
    config_digest: str
    layers: list[Descriptor]
    index_bytes: bytes | None = None
    index_media_type: str | None = None
    other_blobs: tuple[tuple[str, bytes], ...] = ()  # the index's other manifests and their configs, when asked for


class LayerStream(Protocol):
    """An open layer blob: its announced size and its bytes, streamed once."""

    size: int | None
    file_reads: bool  # read from a file, as dockerd reads a loaded archive (see layers/pipeline.py)

    def iter_chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in order, in non-empty chunks of at most `chunk_size` bytes."""
        ...


class ImageSource(Protocol):
    """A registry, an archive or a layout: anything that resolves to an image and streams its blobs."""

    def resolve(self) -> ResolvedImage: ...

    def open_layer(self, desc: Descriptor) -> AbstractContextManager[LayerStream]: ...

    def close(self) -> None: ...
