"""One layer, one pass: blob digest → decompress → diff_id + tar-split + extraction.

The compressed stream is read once; every byte is hashed on the way, each tar member is
recorded for tar-split and applied to the staging diff dir(s) as it streams by.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

from emustore.errors import DigestMismatch, LayerError
from emustore.layers.compression import PLAIN, READ_WINDOW, Decompressed, file_read_cuts
from emustore.layers.extract import OPAQUE_XATTR, Extractor
from emustore.layers.prefetch import Prefetched
from emustore.layers.tarsplit import TarSplitPacker, crc64_iso
from emustore.layers.tarstream import ByteStream, TarReader
from emustore.layers.unprivileged import Unwritable

MAX_EXPANSION = 1100  # gzip cannot exceed ~1032:1; more is a bomb (or a zstd/bzip2 extreme)
MIN_EXPANSION_LIMIT = 1 << 30


def expansion_limit(compressed_size: int, ratio: int = MAX_EXPANSION) -> int | None:
    """The decompressed bytes a blob of `compressed_size` may give: ratio × size, at least
    MIN_EXPANSION_LIMIT (1 GiB). A ratio of 0 means no limit."""
    return max(MIN_EXPANSION_LIMIT, ratio * compressed_size) if ratio else None


@dataclass(frozen=True)
class LayerResult:
    blob_digest: str
    compressed_size: int
    compression: str
    diff_id: str
    size: int
    unwritable: Unwritable | None = None  # without root: what could not be written as the layer says


def unpack_layer(
    compressed: Iterable[bytes],
    blob_digest: str,
    diff_dir: str,
    tar_split_path: str,
    on_bytes: Callable[[int], None] | None = None,
    max_output: int | None = None,
    file_reads: bool = False,
    opaque_xattr: str = OPAQUE_XATTR,
) -> LayerResult:
    """Stream a layer blob into `diff_dir` and its tar-split; raise if the blob's digest is wrong.

    `max_output` caps the decompressed bytes (see expansion_limit); None means unlimited.
    `file_reads`: dockerd reads this blob straight from a file (docker load), see file_read_cuts.
    `opaque_xattr` marks opaque directories (user.overlay.opaque for a rootless layout)."""
    blob_hash = hashlib.sha256()
    counted = 0

    def hashed() -> Iterator[bytes]:
        nonlocal counted
        for chunk in compressed:
            blob_hash.update(chunk)
            counted += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            yield chunk

    source = hashed()
    try:
        return _unpack(
            source, blob_hash, lambda: counted, blob_digest, diff_dir, tar_split_path, max_output, file_reads, opaque_xattr
        )
    except LayerError:
        for _ in source:  # a corrupt download explains a broken layer better: check the digest
            pass
        _verify(blob_hash, blob_digest)
        raise


def _verify(blob_hash: "hashlib._Hash", blob_digest: str) -> None:
    actual = "sha256:" + blob_hash.hexdigest()
    if actual != blob_digest:
        raise DigestMismatch(
            "filesystem layer verification failed for digest %s: got %s" % (blob_digest, actual)
        )


def _unpack(
    source: Iterator[bytes],
    blob_hash: "hashlib._Hash",
    counted: Callable[[], int],
    blob_digest: str,
    diff_dir: str,
    tar_split_path: str,
    max_output: int | None,
    file_reads: bool = False,
    opaque_xattr: str = OPAQUE_XATTR,
) -> LayerResult:
    decompressed = Decompressed(source, max_output)
    diff_hash = hashlib.sha256()
    ahead = Prefetched(_fed(iter(decompressed), diff_hash.update))  # download, hash, decompress
    stream = ByteStream(iter(ahead), _ignore)
    with closing(ahead), open(tar_split_path, "wb") as out:
        packer = TarSplitPacker(out)
        extractor = Extractor(diff_dir, opaque_xattr)
        _disassemble(TarReader(stream), packer, extractor)
        trailing = 0
        rest = stream.rest(READ_WINDOW)
        for chunk in file_read_cuts(rest, stream.offset) if file_reads and decompressed.kind == PLAIN else rest:
            trailing += 1
            packer.add_segment(chunk)
        for _ in source:  # bytes after the compressed stream still count for the digest
            pass
        if not trailing or decompressed.final_empty_read:
            packer.add_segment(b"")
        packer.close()
        extractor.finish()
    _verify(blob_hash, blob_digest)
    return LayerResult(
        blob_digest=blob_digest,
        compressed_size=counted(),
        compression=decompressed.kind,
        diff_id="sha256:" + diff_hash.hexdigest(),
        size=layer_size(diff_dir),
        unwritable=extractor.unwritable,
    )


def _fed(chunks: Iterator[bytes], update: Callable[[bytes], None]) -> Iterator[bytes]:
    """`chunks`, each handed to `update` (a hash) on the way."""
    for chunk in chunks:
        update(chunk)
        yield chunk


def _ignore(chunk: bytes) -> None:
    pass


def _disassemble(reader: TarReader, packer: TarSplitPacker, extractor: Extractor) -> None:
    """Members in archive order: raw segment, extraction, then the file entry with its CRC."""
    while True:
        hdr = reader.next()
        if reader.raw:
            packer.add_segment(reader.raw)
        if hdr is None:
            return
        crc = 0

        def content() -> Iterator[memoryview]:
            nonlocal crc
            for piece in reader.data():
                crc = crc64_iso(piece, crc)
                yield piece

        pieces = content()
        extractor.apply(hdr, pieces)
        for _ in pieces:  # content the extraction did not need still feeds the CRC
            pass
        packer.add_file(hdr.name, hdr.size, crc if hdr.size > 0 else None)


def layer_size(diff_dir: str) -> int:
    """dockerd's layer size: st_size of every non-directory, each inode once (pkg/directory)."""
    seen: set[int] = set()
    total = 0
    stack = [diff_dir]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif st.st_size and st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total
