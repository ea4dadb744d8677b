"""The blob cache around any source: tee and publish only verified blobs, serve and re-verify them."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.errors import ManifestError, StoreError
from emustore.manifest import Descriptor
from emustore.sources.cache import BlobCache, CachingSource

DATA = b"layer bytes " * 50000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
DESC = Descriptor("application/vnd.oci.image.layer.v1.tar", DIGEST, len(DATA))


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.size: int | None = len(data)
        self._data = data

    def iter_chunks(self, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        for start in range(0, len(self._data), chunk_size):
            yield self._data[start : start + chunk_size]


class CountingSource:
    """Serves DATA (or `served` instead) for every layer and counts the opens."""

    def __init__(self, served: bytes = DATA) -> None:
        self.served = served
        self.opened = 0

    def resolve(self) -> object:
        raise NotImplementedError

    @contextlib.contextmanager
    def open_layer(self, desc: Descriptor) -> Iterator[_Stream]:
        self.opened += 1
        yield _Stream(self.served)

    def close(self) -> None:
        pass


def read_through(source: CachingSource) -> bytes:
    with source.open_layer(DESC) as blob:
        return b"".join(blob.iter_chunks())


def test_a_verified_blob_is_published_and_then_served_from_the_cache(tmp_path: Path) -> None:
    inner = CountingSource()
    cache = BlobCache(tmp_path / "cache")
    assert read_through(CachingSource(inner, cache)) == DATA
    assert cache.path(DIGEST).read_bytes() == DATA
    assert (tmp_path / "cache/oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    assert read_through(CachingSource(inner, BlobCache(tmp_path / "cache"))) == DATA
    assert inner.opened == 1
    assert [p.name for p in cache.blobs.iterdir()] == [DIGEST.split(":")[1]]


def test_a_wrong_or_unfinished_blob_is_never_published(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    read_through(CachingSource(CountingSource(served=DATA[:-1] + b"!"), cache))
    with CachingSource(CountingSource(), cache).open_layer(DESC) as blob:
        next(blob.iter_chunks())
    with pytest.raises(RuntimeError), CachingSource(CountingSource(), cache).open_layer(DESC) as blob:
        for _ in blob.iter_chunks():
            raise RuntimeError("the pipeline failed")
    assert list(cache.blobs.iterdir()) == []


def test_a_corrupt_cached_blob_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    read_through(CachingSource(CountingSource(), cache))
    path = cache.path(DIGEST)
    path.chmod(0o644)
    path.write_bytes(b"rotten")
    inner = CountingSource()
    assert read_through(CachingSource(inner, cache)) == DATA
    assert inner.opened == 1
    assert path.read_bytes() == DATA



def test_an_unusable_cache_dir_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    for path, why in (
        (tmp_path / "file", "it is not a directory"),
        (tmp_path / "none" / "cache", f"its parent {tmp_path / 'none'} does not exist"),
    ):
        with pytest.raises(StoreError) as raised:
            BlobCache(path)
        assert str(raised.value) == f"cannot use {path} as a blob cache: {why}"


@pytest.mark.parametrize("digest", ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "a" * 128, "sha256:"])
def test_only_sha256_digests_become_names(digest: str, tmp_path: Path) -> None:
    with pytest.raises(ManifestError):
        BlobCache(tmp_path / "cache").path(digest)
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*")) == ["blobs", "oci-layout", "sha256"]
