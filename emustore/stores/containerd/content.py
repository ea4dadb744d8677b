"""containerd's content store on disk: every blob exactly as fetched, 0444, named by its sha256.

A blob becomes visible by a rename of a complete, synced file whose digest was verified: one
staged while a layer was unpacked (pipeline.kept_blob, verified by the pipeline), or small bytes
already in memory (manifests, configs: hashed here). A blob already there is never rewritten.
Temp files live beside the blobs (`.tmp-*`: containerd skips names that are no digest), so that
the rename stays on one file system even when the snapshotter's dir is a mount of its own.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from emustore.digest import is_digest
from emustore.fsutil import TEMP_PREFIX, fsync_dir
from emustore.stores.containerd.layout import ContainerdRoot

BLOB_MODE = 0o444
MAX_READ = 8 << 20  # the largest blob read whole (an image config)


class ContentStore:
    def __init__(self, layout: ContainerdRoot) -> None:
        self.layout = layout

    def has(self, digest: str) -> bool:
        """A regular file (not a link) is there for `digest` (a sha256 digest; anything else: no)."""
        try:
            return is_digest(digest) and stat.S_ISREG(os.lstat(self.layout.blob(digest)).st_mode)
        except OSError:
            return False

    def get(self, digest: str) -> bytes | None:
        """The blob's bytes when it is there, small enough and verifies (an image config)."""
        if not is_digest(digest):
            return None
        try:
            fd = os.open(self.layout.blob(digest), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (OSError, ValueError):
            return None
        try:
            data = os.read(fd, MAX_READ + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_READ or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return None
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Write `data` as blob `digest` unless it is there (ValueError when it does not verify)."""
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ValueError("blob %s does not match its bytes" % digest)
        target = self.layout.blob(digest)
        if not target.exists():
            self._write_new(target, [data])

    def _write_new(self, target: Path, chunks: Iterable[bytes]) -> None:
        """`chunks` into a temp file beside the blobs, 0444, synced, renamed to `target`."""
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.layout.blobs)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fchmod(fd, BLOB_MODE)
            os.fsync(fd)
            os.rename(temp, target)
        except BaseException:
            os.unlink(temp)
            raise
        finally:
            os.close(fd)

    def publish(self, staged: Path, digest: str) -> None:
        """Rename a verified, synced staged blob into place (copied when the staging dir is on
        another file system; dropped when the blob is there)."""
        target = self.layout.blob(digest)
        if target.exists():
            os.unlink(staged)
            return
        try:
            os.rename(staged, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            with open(staged, "rb") as source:
                self._write_new(target, iter(lambda: source.read(1 << 20), b""))
            os.unlink(staged)

    def temp_files(self) -> Iterator[Path]:
        """Temp files of interrupted writes (only a writer holding the lock makes them)."""
        try:
            names = os.listdir(self.layout.blobs)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(TEMP_PREFIX):
                yield self.layout.blobs / name

    def remove_unrecorded(self, keep: set[str]) -> list[Path]:
        """Remove each blob no namespace of meta.db records (`keep`: digests), as containerd's
        content garbage collection does. Only under the writer lock, never beside a containerd."""
        removed = []
        try:
            names = os.listdir(self.layout.blobs)
        except FileNotFoundError:
            return []
        for name in names:
            if len(name) == 64 and "sha256:" + name not in keep:
                path = self.layout.blobs / name
                if os.path.isfile(path) and not os.path.islink(path):
                    os.unlink(path)
                    removed.append(path)
        if removed:
            self.sync()
        return removed

    def sync(self) -> None:
        fsync_dir(self.layout.blobs)
