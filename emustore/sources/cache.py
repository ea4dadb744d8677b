"""A blob cache shared by many roots: DIR/blobs/sha256/<hex>, like an OCI layout's content store.

`CachingSource` wraps any image source: a layer found in the cache (and verified there) is read
from it; any other is teed into the cache while the pipeline streams it, and published (by an
atomic rename) only once the whole blob matched its digest. Configs are kept the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from emustore.digest import Digest, Hasher
from emustore.errors import ManifestError, StoreError
from emustore.fsutil import atomic_write, ensure_dir, unusable_dir
from emustore.manifest import Descriptor
from emustore.sources.base import ImageSource, LayerStream, ResolvedImage

READ_SIZE = 1 << 20
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class BlobCache:
    """The content store at `root`; every read is verified, every write published atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.blobs = self.root / "blobs" / "sha256"
        try:
            for path in (self.root, self.root / "blobs", self.blobs):
                ensure_dir(path, 0o755)
            if not (self.root / "oci-layout").exists():
                atomic_write(self.root / "oci-layout", LAYOUT_FILE, 0o644)
        except OSError as exc:
            raise StoreError(unusable_dir(self.root, "a blob cache", exc)) from None

    def path(self, digest: str) -> Path:
        """blobs/sha256/<hex>; anything but a sha256 digest is refused, never made a name."""
        parsed = Digest.parse(digest)
        if parsed is None:
            raise ManifestError("not a sha256 digest: %r" % digest[:80])
        return self.blobs / parsed.hex

    def verified(self, digest: str) -> Path | None:
        """The cached blob's path if it is there and matches its digest; a corrupt one is removed."""
        path = self.path(digest)
        hasher = Hasher()
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(READ_SIZE), b""):
                    hasher.update(chunk)
        except FileNotFoundError:
            return None
        if hasher.digest() != digest:
            path.unlink(missing_ok=True)
            return None
        return path

    def get(self, digest: str) -> bytes | None:
        """A small cached blob (a config), verified."""
        path = self.verified(digest)
        return path.read_bytes() if path is not None else None

    def put(self, digest: str, data: bytes) -> None:
        if Digest.of_bytes(data) == digest and not self.path(digest).exists():
            atomic_write(self.path(digest), data, 0o444, temp_prefix=".tmp-")

    @contextlib.contextmanager
    def writer(self, digest: str) -> Iterator[_BlobWriter]:
        """A temp file that becomes the blob only if complete and verified when the block ends."""
        writer = _BlobWriter(self, digest)
        try:
            yield writer
            writer.publish()
        finally:
            writer.discard()


class _BlobWriter:
    def __init__(self, cache: BlobCache, digest: str) -> None:
        self.target = cache.path(digest)
        self.digest = digest
        self.temp = self.target.with_name(f".tmp-{self.target.name}-{secrets.token_hex(4)}")
        self._handle = self.temp.open("xb")
        self._hash = Hasher()
        self.complete = False

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._handle.write(chunk)

    def publish(self) -> None:
        """Rename into place if the stream was read to its end and matched the digest."""
        if not self.complete or self._hash.digest() != self.digest:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        os.fchmod(self._handle.fileno(), 0o444)
        self._handle.close()
        os.rename(self.temp, self.target)

    def discard(self) -> None:
        self._handle.close()
        self.temp.unlink(missing_ok=True)


class _CachedBlob:
    """A layer read back from the cache (it stands for a registry download: no file read cuts)."""

    file_reads = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size: int | None = path.stat().st_size

    def iter_chunks(self, chunk_size: int = READ_SIZE) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            yield from iter(lambda: handle.read(chunk_size), b"")


class _TeeBlob:
    """A layer streamed from the wrapped source and copied into the cache on the way."""

    file_reads = False

    def __init__(self, blob: LayerStream, writer: _BlobWriter) -> None:
        self.size = blob.size
        self._blob = blob
        self._writer = writer

    def iter_chunks(self, chunk_size: int = READ_SIZE) -> Iterator[bytes]:
        for chunk in self._blob.iter_chunks(chunk_size):
            self._writer.write(chunk)
            yield chunk
        self._writer.complete = True


class CachingSource:
    """Any ImageSource, with its blobs kept in (and served from) a BlobCache."""

    def __init__(self, inner: ImageSource, cache: BlobCache) -> None:
        self.inner = inner
        self.cache = cache
        if hasattr(inner, "config_stores"):  # a registry source: its config fetch is a blob too
            inner.config_stores.append(cache)

    def resolve(self) -> ResolvedImage:
        image = self.inner.resolve()
        self.cache.put(image.config_digest, image.config_bytes)
        return image

    @contextlib.contextmanager
    def open_layer(self, desc: Descriptor) -> Iterator[LayerStream]:
        path = self.cache.verified(desc.digest)
        if path is not None:
            yield _CachedBlob(path)
            return
        with self.inner.open_layer(desc) as blob, self.cache.writer(desc.digest) as writer:
            yield _TeeBlob(blob, writer)

    def close(self) -> None:
        self.inner.close()
