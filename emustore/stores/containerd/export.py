"""Images of a containerd namespace as archive images (formats/): what `save` writes from a
containerd root. Each layer's tar is its content store blob decompressed (gzip, zstd or none,
sniffed), verified against the config's diff id as it streams; its length is measured by a first
verified pass (a tar header needs it before the bytes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import Hasher
from emustore.errors import LayerError, StoreError
from emustore.formats.archive import ArchiveImage, ArchiveLayer
from emustore.layers.compression import Decompressed
from emustore.reference import parse_reference
from emustore.stores.containerd.catalog import ContainerdCatalog

CHUNK = 1 << 20


@dataclass
class _BlobLayer:
    """A layer of the content store as an ArchiveLayer."""

    chain_id: str
    diff_id: str
    blob: Path
    _size: int | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = sum(len(chunk) for chunk in self.chunks())
        return self._size

    def chunks(self) -> Iterator[bytes]:
        """The decompressed tar, verified against the diff id at its end."""
        hasher = Hasher()
        for chunk in Decompressed(self._compressed()):
            hasher.update(chunk)
            yield bytes(chunk)
        if hasher.digest() != self.diff_id:
            raise LayerError("layer %s decompresses to %s, not its diff id %s" % (self.chain_id, hasher.digest(), self.diff_id))

    def _compressed(self) -> Iterator[bytes]:
        try:
            fd = os.open(self.blob, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise StoreError("cannot read %s: %s" % (self.blob, error.strerror)) from None
        try:
            while chunk := os.read(fd, CHUNK):
                yield chunk
        finally:
            os.close(fd)


def archive_images(catalog: ContainerdCatalog, names: list[str]) -> list[ArchiveImage]:
    """The images `names` name (as ctr names them, or fully qualified), this machine's platform of
    an index; one archive image per config, tagged with every name given for it."""
    found: dict[str, ArchiveImage] = {}
    for text in names:
        image = catalog.resolve(text)
        view = catalog.view(image)
        if view.status != "complete" or view.config is None:
            raise StoreError("image %s is not complete in the content store (%s)" % (image.name, view.status))
        config = catalog.content.get(view.config.digest)
        if config is None or any(layer.diff_id is None or layer.chain_id is None for layer in view.layers):
            raise StoreError("image %s: its config %s is unreadable" % (image.name, view.config.digest))
        layers: list[ArchiveLayer] = [
            _BlobLayer(layer.chain_id or "", layer.diff_id or "", catalog.layout.blob(layer.descriptor.digest))
            for layer in view.layers
        ]
        archived = found.setdefault(view.config.digest, ArchiveImage(view.config.digest, config, layers))
        reference = parse_reference(image.name)
        if reference.digest is None and reference not in archived.tags:
            archived.tags.append(reference)
    return list(found.values())
