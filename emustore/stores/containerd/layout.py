"""The paths and modes of a containerd root (containerd-store-format.md §1), and our own dir in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emustore.digest import hex_of, is_digest
from emustore.errors import StoreError
from emustore.fsutil import ensure_dir

DEFAULT_ROOT = "/var/lib/containerd"
CONTENT = "io.containerd.content.v1.content"
METADATA = "io.containerd.metadata.v1.bolt"
OVERLAYFS = "io.containerd.snapshotter.v1.overlayfs"
SNAPSHOTTER = "overlayfs"  # the snapshotter's name in meta.db and in the gc.ref.snapshot label
DOCKER_NAMESPACE = "moby"  # Docker's containerd image store: its pull, its cri.* labels, its `docker images`
OURS = "emustore"  # our dir inside the snapshotter's (same file system as the snapshots): lock, staging


@dataclass(frozen=True)
class ContainerdRoot:
    root: Path

    @property
    def content(self) -> Path:
        return self.root / CONTENT

    @property
    def blobs(self) -> Path:
        return self.content / "blobs" / "sha256"

    @property
    def ingest(self) -> Path:
        return self.content / "ingest"

    def blob(self, digest: str) -> Path:
        """blobs/sha256/<hex>; only a sha256 digest becomes a file name (a hostile record: one-line error)."""
        if not is_digest(digest):
            raise StoreError("not a sha256 digest: %r" % digest[:100])
        return self.blobs / hex_of(digest)

    @property
    def meta_db(self) -> Path:
        return self.root / METADATA / "meta.db"

    @property
    def overlayfs(self) -> Path:
        return self.root / OVERLAYFS

    @property
    def metadata_db(self) -> Path:
        return self.overlayfs / "metadata.db"

    @property
    def snapshots(self) -> Path:
        return self.overlayfs / "snapshots"

    def snapshot(self, snapshot_id: int) -> Path:
        return self.snapshots / str(snapshot_id)

    @property
    def ours(self) -> Path:
        return self.overlayfs / OURS

    @property
    def lock_file(self) -> Path:
        return self.ours / "emustore.lock"

    @property
    def staging(self) -> Path:
        return self.ours / "staging"

    def prepare_staging(self) -> None:
        """The root (0700 as containerd 2.1 made it), the snapshotter's dir and ours."""
        ensure_dir(self.root, 0o700)
        ensure_dir(self.overlayfs, 0o700)
        ensure_dir(self.ours, 0o700)
        ensure_dir(self.staging, 0o700)

    def prepare_store(self) -> None:
        """Every directory a commit writes into, with containerd's modes."""
        self.prepare_staging()
        for path, mode in (
            (self.content, 0o755),
            (self.content / "blobs", 0o755),
            (self.blobs, 0o755),
            (self.ingest, 0o755),
            (self.root / METADATA, 0o711),
            (self.snapshots, 0o700),
        ):
            ensure_dir(path, mode)

    def remove_empty_staging(self) -> None:
        """What a failed first write left empty: staging, our dir (the root stays: containerd's)."""
        for path in (self.staging, self.ours):
            try:
                path.rmdir()
            except OSError:
                return
