"""One layer, one pass: blob digest → decompress → diff_id + tar-split + extraction.

The compressed stream is read once; every byte is hashed on the way, each tar member is
recorded for tar-split and applied to the staging diff dir as it streams by: here in the
calling thread, and for a layer of many small files, from the point it shows them, by a forked
child process fed the parsed members (extract_process.py). A pull runs this whole pass in a
process of its own per layer (layer_process.py), but for small blobs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from emustore.engines import DEFAULT, Dialect
from emustore.errors import DigestMismatch, LayerError
from emustore.layers.expansion import ExpansionLimit
from emustore.layers.compression import PLAIN, READ_WINDOW, Decompressed, file_read_cuts
from emustore.layers.extract import OPAQUE_XATTR, Extractor
from emustore.layers.extract_process import ExtractProcess
from emustore.layers.prefetch import Prefetched
from emustore.layers.tarsplit import TarSplitPacker, crc64_iso
from emustore.layers.tarstream import ByteStream, TarHeader, TarReader
from emustore.layers.unprivileged import Unwritable

FORK_CHECK_EVERY = 256  # members between two looks at the file sizes (see _Extraction)
SMALL_FILE = 64 << 10  # a window of members averaging less moves the extraction to a child process
VERIFY_TAIL = 1 << 20  # after a layer error, the most of the rest of the blob read to check its digest


@dataclass(frozen=True)
class LayerResult:
    blob_digest: str
    compressed_size: int
    compression: str
    diff_id: str
    size: int
    unwritable: Unwritable | None = None  # without root: what could not be written as the layer says


@dataclass(frozen=True)
class UnpackOptions:
    """How a layer is unpacked."""

    expansion: ExpansionLimit | None = None  # caps the decompressed bytes; None: unlimited
    file_reads: bool = False  # dockerd reads this blob straight from a file (docker load): file_read_cuts
    opaque_xattr: str = OPAQUE_XATTR  # marks opaque dirs (user.overlay.opaque for a rootless layout)
    may_fork: bool = True  # a layer of many small files may move its extraction to a forked child
    dialect: Dialect = DEFAULT  # the engine whose tar-split and xattrs are written
    skipped_xattrs: tuple[bytes, ...] = ()  # prefixes of layer xattrs never set (containerd's applier: trusted.)


def unpack_layer(
    compressed: Iterable[bytes],
    blob_digest: str,
    diff_dir: str,
    tar_split_path: str | None,
    options: UnpackOptions = UnpackOptions(),
    on_bytes: Callable[[int], None] | None = None,
    blob_path: str | None = None,
) -> LayerResult:
    """Stream a layer blob into `diff_dir` and its tar-split (none when `tar_split_path` is None);
    raise if the blob's digest is wrong. With `blob_path`, the compressed bytes are also written
    there as they pass (a store keeping blobs as fetched: kept_blob).

    With `options.may_fork`, a layer of many small files is extracted by a forked child (beside
    this thread's work) from the point it shows them (see _Extraction); otherwise all right here."""
    if blob_path is not None:
        with kept_blob(compressed, blob_path) as kept:
            return unpack_layer(kept, blob_digest, diff_dir, tar_split_path, options, on_bytes)
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

    source = _Source(hashed(), blob_hash, lambda: counted, blob_digest)
    try:
        return _unpack(source, diff_dir, tar_split_path, options)
    except LayerError:
        # A corrupt download explains a broken layer better: the digest is checked when the blob
        # ends within VERIFY_TAIL bytes. Otherwise the error stands, and the rest is never read.
        if _ends_within(source.chunks, VERIFY_TAIL):
            source.verify()
        raise


@contextmanager
def kept_blob(chunks: Iterable[bytes], path: str) -> Iterator[Iterator[bytes]]:
    """`chunks`, each also written to the new file `path` (0444) as it passes; synced when the
    block ends normally (the caller verifies the digest before publishing the file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)

    def written() -> Iterator[bytes]:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            yield chunk

    try:
        yield written()
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Source:
    """The blob's chunks as they are hashed and counted, and the digest they must have."""

    chunks: Iterator[bytes]
    blob_hash: "hashlib._Hash"
    counted: Callable[[], int]
    digest: str

    def verify(self) -> None:
        actual = "sha256:" + self.blob_hash.hexdigest()
        if actual != self.digest:
            raise DigestMismatch("filesystem layer verification failed for digest %s: got %s" % (self.digest, actual))


def _ends_within(chunks: Iterator[bytes], limit: int) -> bool:
    """Whether `chunks` end after at most `limit` more bytes (reading no more than a chunk past them)."""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read > limit:
            return False
    return True


def _unpack(source: _Source, diff_dir: str, tar_split_path: str | None, options: UnpackOptions) -> LayerResult:
    expansion, dialect = options.expansion, options.dialect
    refusal = (lambda output: expansion.refusal(output, source.counted())) if expansion is not None else None
    decompressed = Decompressed(source.chunks, refusal)
    diff_hash = hashlib.sha256()
    extractor = Extractor(diff_dir, options.opaque_xattr, dialect.symlink_xattrs_on_target, options.skipped_xattrs)
    extraction = _Extraction(extractor, options.may_fork)
    ahead = Prefetched(_fed(iter(decompressed), diff_hash.update))  # blob in, hash, decompress
    position = _Position()
    try:
        _split(ByteStream(iter(ahead), _ignore), tar_split_path, extraction, position, options, decompressed)
        for _ in source.chunks:  # bytes after the compressed stream still count for the digest
            pass
    except LayerError:
        ahead.close()
        first = extraction.child_error_first(position.index)
        if first is not None:
            raise first from None
        raise
    except BaseException:
        extraction.abort()
        ahead.close()
        raise
    ahead.close()
    size, unwritable = extraction.finish()
    source.verify()
    return LayerResult(
        blob_digest=source.digest,
        compressed_size=source.counted(),
        compression=decompressed.kind,
        diff_id="sha256:" + diff_hash.hexdigest(),
        size=size,
        unwritable=unwritable,
    )


class _Position:
    """The index of the member being read (where an error of the parent's side happened)."""

    index = 0


class _Extraction:
    """Applies the members in this thread until the layer turns out to hold many small files:
    then (with `may_fork`) a forked extraction process carries on from the same state.

    Writing a large file's content costs system calls that run without the GIL, little Python;
    many small files cost Python per file, beside the parsing: from FORK_CHECK_EVERY members on,
    each window of that many members averaging less than SMALL_FILE bytes moves the rest of the
    extraction to a process of its own (fed the parsed members, extract_process.py)."""

    def __init__(self, extractor: Extractor, may_fork: bool) -> None:
        self.extractor: Extractor | None = extractor
        self.child: ExtractProcess | None = None
        self._may_fork = may_fork
        self._window = 0  # content bytes of the members since the last check

    def apply(self, hdr: TarHeader, pieces: Iterator[memoryview], index: int) -> int:
        """Apply member `index` here or send it to the child; the CRC-64 of its content."""
        if self._may_fork and self.child is None:
            self._consider_forking(index)
            self._window += hdr.data_size
        crc = 0
        if self.child is not None:
            self.child.member(hdr)
            for piece in pieces:
                crc = crc64_iso(piece, crc)
                self.child.content(piece)
            return crc

        def content() -> Iterator[memoryview]:
            nonlocal crc
            for piece in pieces:
                crc = crc64_iso(piece, crc)
                yield piece

        assert self.extractor is not None
        given = content()
        self.extractor.apply(hdr, given)
        for _ in given:  # content the extraction did not need still feeds the CRC
            pass
        return crc

    def _consider_forking(self, index: int) -> None:
        if index == 0 or index % FORK_CHECK_EVERY:
            return
        if self._window < FORK_CHECK_EVERY * SMALL_FILE:
            assert self.extractor is not None
            self.child = ExtractProcess(self.extractor, index)  # the child carries on with this state
            self.extractor = None
        self._window = 0

    def child_error_first(self, index: int) -> LayerError | None:
        """The child's error when it happened before member `index` (this side's position)."""
        return self.child.finish().error_first(index) if self.child is not None else None

    def finish(self) -> tuple[int, Unwritable | None]:
        """The layer's size and what could not be written, once every member is applied."""
        if self.child is not None:
            outcome = self.child.finish()
            if outcome.error is not None:
                raise LayerError(outcome.error)
            return outcome.size, outcome.unwritable
        assert self.extractor is not None
        self.extractor.finish()
        return self.extractor.layer_size(), self.extractor.unwritable

    def abort(self) -> None:
        if self.child is not None:
            self.child.abort()


def _split(
    stream: ByteStream,
    tar_split_path: str | None,
    extraction: _Extraction,
    position: _Position,
    options: UnpackOptions,
    decompressed: Decompressed,
) -> None:
    """Write the tar-split of the whole stream (none without a path), applying each member on the way."""
    dialect = options.dialect
    with open(tar_split_path, "wb") if tar_split_path is not None else nullcontext(None) as out:
        packer = TarSplitPacker(out, dialect.go122_json_escapes) if out is not None else _NoTarSplit()
        _disassemble(TarReader(stream, dialect.empty_xattrs), packer, extraction, position)
        trailing = 0
        rest = stream.rest(READ_WINDOW)
        for chunk in file_read_cuts(rest, stream.offset) if options.file_reads and decompressed.kind == PLAIN else rest:
            trailing += 1
            packer.add_segment(chunk)
        # 20.10 ends with the empty segment of a final read of 0 bytes; 26 and later never do
        if dialect.tar_split_final_empty_segment and (not trailing or decompressed.final_empty_read):
            packer.add_segment(b"")
        packer.close()


class _NoTarSplit:
    """The packer's interface, keeping nothing (a store without tar-split: containerd)."""

    def add_segment(self, raw: bytes | memoryview) -> None:
        pass

    def add_file(self, name: bytes, size: int, crc: int | None) -> None:
        pass

    def close(self) -> None:
        pass


def _fed(chunks: Iterator[bytes], update: Callable[[bytes], None]) -> Iterator[bytes]:
    """`chunks`, each handed to `update` (a hash) on the way."""
    for chunk in chunks:
        update(chunk)
        yield chunk


def _ignore(chunk: bytes) -> None:
    pass


def _disassemble(reader: TarReader, packer: TarSplitPacker | _NoTarSplit, extraction: _Extraction, position: _Position) -> None:
    """Members in archive order: raw segment, extraction, then the file entry with its CRC.
    A child that failed stops the reading once it reaches the child's error."""
    while True:
        if extraction.child is not None and extraction.child.ended:
            first = extraction.child_error_first(position.index)
            if first is not None:
                raise first
        hdr = reader.next()
        if reader.raw:
            packer.add_segment(reader.raw)
        if hdr is None:
            return
        crc = extraction.apply(hdr, reader.data(), position.index)
        packer.add_file(hdr.name, hdr.size, crc if hdr.size > 0 else None)
        position.index += 1
