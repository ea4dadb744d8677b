"""image/overlay2/imagedb: image configs stored byte for byte under their sha256."""

from __future__ import annotations

from pathlib import Path

from emustore.digest import Digest, hex_of
from emustore.fsutil import atomic_write, ensure_dir
from emustore.stores.docker.layout import DataRoot


class ImageDB:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def path(self, image_id: str) -> Path:
        return self.layout.imagedb_content / hex_of(image_id)

    def get(self, image_id: str) -> bytes | None:
        """The config bytes, or None when absent or not matching the id (dockerd skips those)."""
        try:
            data = self.path(image_id).read_bytes()
        except FileNotFoundError:
            return None
        return data if Digest.of_bytes(data) == image_id else None

    def parent(self, image_id: str) -> str | None:
        """The parent image recorded in metadata (builds, commits and loads write it; pulls never)."""
        try:
            return (self.layout.imagedb_metadata / hex_of(image_id) / "parent").read_text().strip() or None
        except FileNotFoundError:
            return None

    def set_parent(self, image_id: str, parent: str) -> None:
        """metadata/sha256/<id>/parent (dir 0700, file 0600, atomic), as `docker load` records it."""
        directory = self.layout.imagedb_metadata / hex_of(image_id)
        ensure_dir(directory, 0o700)
        atomic_write(directory / "parent", parent.encode("ascii"), 0o600)

    def put(self, config: bytes) -> str:
        """Store a config (0600, atomically) and return its image id."""
        image_id = Digest.of_bytes(config)
        atomic_write(self.path(image_id), config, 0o600)
        return image_id
