"""image/overlay2/imagedb, its one owner: configs stored byte for byte under their sha256
(content/), and per image the metadata dockerd keeps beside them (metadata/: parent, lastUpdated)."""

from __future__ import annotations

import os
from pathlib import Path

from emustore.digest import Digest, hex_of, is_hex64
from emustore.fsutil import atomic_write, ensure_dir, remove_tree
from emustore.stores.docker.layout import DataRoot


class ImageDB:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def path(self, image_id: str) -> Path:
        return self.layout.imagedb_content / hex_of(image_id)

    def ids(self) -> list[Digest]:
        """The ids of the configs present (files named by 64 hex digits), verified or not."""
        return [Digest.from_hex(name) for name in self._names() if is_hex64(name)]

    def get(self, image_id: str) -> bytes | None:
        """The config bytes, or None when absent, unreadable or not matching the id (dockerd skips those)."""
        try:
            data = self.path(image_id).read_bytes()
        except OSError:
            return None
        return data if Digest.of_bytes(data) == image_id else None

    def put(self, config: bytes) -> str:
        """Store a config (0600, atomically) and return its image id."""
        image_id = Digest.of_bytes(config)
        atomic_write(self.path(image_id), config, 0o600)
        return image_id

    def parent(self, image_id: str) -> str | None:
        """The parent image recorded in metadata (builds, commits and loads write it; pulls never)."""
        return self._metadata(image_id, "parent")

    def set_parent(self, image_id: str, parent: str) -> None:
        """metadata/sha256/<id>/parent, as `docker load` records it."""
        self._set_metadata(image_id, "parent", parent)

    def remove_parent(self, image_id: str) -> None:
        """Forget the image's parent (it is being deleted)."""
        try:
            (self._metadata_dir(image_id) / "parent").unlink()
        except FileNotFoundError:
            pass

    def last_updated(self, image_id: str) -> str | None:
        """metadata/sha256/<id>/lastUpdated: when `docker tag` last tagged it (RFC 3339)."""
        return self._metadata(image_id, "lastUpdated")

    def set_last_updated(self, image_id: str, text: str) -> None:
        self._set_metadata(image_id, "lastUpdated", text)

    def delete(self, image_id: str) -> None:
        """Remove the image's metadata, then its config."""
        remove_tree(self._metadata_dir(image_id), ignore_errors=True)
        try:
            self.path(image_id).unlink()
        except FileNotFoundError:
            pass

    def _names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.layout.imagedb_content))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _metadata_dir(self, image_id: str) -> Path:
        return self.layout.imagedb_metadata / hex_of(image_id)

    def _metadata(self, image_id: str, name: str) -> str | None:
        try:
            return (self._metadata_dir(image_id) / name).read_text().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def _set_metadata(self, image_id: str, name: str, text: str) -> None:
        """A metadata file (dir 0700, file 0600, atomic), as dockerd writes them."""
        directory = self._metadata_dir(image_id)
        ensure_dir(directory, 0o700)
        atomic_write(directory / name, text.encode("ascii"), 0o600)
