"""Where everything lives in a Docker Engine 20.10 data root using the overlay2 driver."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from emustore.fsutil import atomic_write, ensure_dir


@dataclass(frozen=True)
class DataRoot:
    """Paths of one data root (what dockerd calls --data-root)."""

    root: Path

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def engine_id(self) -> Path:
        return self.root / "engine-id"

    @property
    def lock_file(self) -> Path:
        return self.tmp / "emustore.lock"

    @property
    def staging(self) -> Path:
        return self.tmp / "emustore-staging"

    @property
    def image(self) -> Path:
        return self.root / "image" / "overlay2"

    @property
    def repositories_json(self) -> Path:
        return self.image / "repositories.json"

    @property
    def imagedb_content(self) -> Path:
        return self.image / "imagedb" / "content" / "sha256"

    @property
    def imagedb_metadata(self) -> Path:
        return self.image / "imagedb" / "metadata" / "sha256"

    @property
    def layerdb(self) -> Path:
        return self.image / "layerdb"

    @property
    def layers(self) -> Path:
        return self.layerdb / "sha256"

    @property
    def layerdb_tmp(self) -> Path:
        return self.layerdb / "tmp"

    @property
    def distribution(self) -> Path:
        return self.image / "distribution"

    @property
    def diffid_by_digest(self) -> Path:
        return self.distribution / "diffid-by-digest" / "sha256"

    @property
    def v2metadata_by_diffid(self) -> Path:
        return self.distribution / "v2metadata-by-diffid" / "sha256"

    @property
    def overlay2(self) -> Path:
        return self.root / "overlay2"

    @property
    def links(self) -> Path:
        return self.overlay2 / "l"

    def prepare_staging(self) -> None:
        """The directories downloads are staged in (dockerd's tmp/, wiped at its start)."""
        ensure_dir(self.root, 0o710)
        ensure_dir(self.tmp, 0o700)
        ensure_dir(self.staging, 0o700)

    def remove_empty_staging(self) -> None:
        """Remove the staging dirs, tmp/ and the root itself where a failed pull left them empty."""
        for path in (self.staging, self.tmp, self.root):
            try:
                path.rmdir()
            except OSError:
                return

    def prepare_store(self, distribution: bool = True, engine_id: bool = False) -> None:
        """The image store directories dockerd 20.10 has after a pull, with its modes.

        Without `distribution`, only `distribution/` itself (dockerd makes it at start; a load
        leaves it empty). With `engine_id`, the root's engine-id as dockerd 26 and later write it
        at start (0600, a random UUID, no newline), unless there is one."""
        self.prepare_staging()
        for path, mode in (
            (self.root / "image", 0o700),
            (self.image, 0o700),
            (self.image / "imagedb", 0o700),
            (self.image / "imagedb" / "content", 0o700),
            (self.imagedb_content, 0o700),
            (self.image / "imagedb" / "metadata", 0o700),
            (self.imagedb_metadata, 0o700),
            (self.layerdb, 0o700),
            (self.layers, 0o755),
            (self.layerdb_tmp, 0o755),
            (self.distribution, 0o700),
            (self.overlay2, 0o710),
            (self.links, 0o700),
        ):
            ensure_dir(path, mode)
        if distribution:
            for path in (
                self.distribution / "diffid-by-digest",
                self.diffid_by_digest,
                self.distribution / "v2metadata-by-diffid",
                self.v2metadata_by_diffid,
            ):
                ensure_dir(path, 0o755)
        if engine_id and not os.path.lexists(self.engine_id):
            atomic_write(self.engine_id, str(uuid.uuid4()).encode(), 0o600)
