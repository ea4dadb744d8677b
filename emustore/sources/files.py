"""Named files of an image archive or layout: a directory, or a tar (plain, gzip, zstd, bzip2, xz).

A plain tar on disk is read by member offsets (`pread`, safe from several threads); a compressed
one is streamed from the start again for each large member it is asked for (small members are
kept from the indexing pass). Nothing is ever extracted to disk.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import zstandard
from isal import igzip

from emustore.errors import ManifestError
from emustore.layers.compression import BZIP2, GZIP, PLAIN, ZSTD, sniff

READ_SIZE = 1 << 20
SMALL_MEMBER = 1 << 16  # members this small are kept in memory by the indexing pass
SMALL_TOTAL = 32 << 20
MAX_LINK_DEPTH = 16
MAX_MEMBERS = 100_000  # an image archive has a few per layer; the index stays small
MAX_EXTENSION = 1 << 20  # Go's limit for PAX and GNU long-name payloads
HEAD_SIZE = 6


class FileStream:
    """One file's bytes, streamed once (a LayerStream); dockerd reads such a blob as a file."""

    file_reads = True

    def __init__(self, size: int, chunks: Iterator[bytes]) -> None:
        self.size: int | None = size
        self._chunks = chunks

    def iter_chunks(self, chunk_size: int = READ_SIZE) -> Iterator[bytes]:
        return self._chunks


class Files(Protocol):
    """Read access to the files of an archive or a layout directory, by relative name."""

    label: str

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def head(self, name: str) -> bytes:
        """The first HEAD_SIZE bytes (enough to sniff a compression)."""
        ...

    def read(self, name: str, limit: int) -> bytes: ...

    def open(self, name: str) -> contextlib.AbstractContextManager[FileStream]: ...

    def close(self) -> None: ...


def clean_name(name: str) -> str:
    """An archive name as a clean relative path ("./a//b/" → "a/b")."""
    cleaned = posixpath.normpath("/" + name).lstrip("/")
    return "" if cleaned == "." else cleaned


def open_files(path: str | os.PathLike[str], label: str | None = None) -> Files:
    """A layout directory or a tar archive (compressed or not) at `path`; `label` names it in errors."""
    target = Path(path)
    if target.is_dir():
        return DirFiles(target)
    if not target.exists():
        raise ManifestError(f"{target}: no such file or directory")
    return TarFiles(target, label)


class DirFiles:
    """Files under a directory (an OCI image layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def _path(self, name: str) -> Path:
        clean = clean_name(name)
        if not clean or clean.startswith("../"):
            raise ManifestError(f"{self.label}: invalid file name {name!r}")
        return self.root / clean

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._stat(name).st_size

    def _stat(self, name: str) -> os.stat_result:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            raise ManifestError(f"{self.label}: {name} is missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise ManifestError(f"{self.label}: {name} is not a regular file")
        return st

    def head(self, name: str) -> bytes:
        self._stat(name)
        with self._path(name).open("rb") as handle:
            return handle.read(HEAD_SIZE)

    def read(self, name: str, limit: int) -> bytes:
        if self._stat(name).st_size > limit:
            raise _too_large(self.label, name, limit)
        with self._path(name).open("rb") as handle:
            data = handle.read(limit + 1)  # bounded even if the file grew since its stat
        if len(data) > limit:
            raise _too_large(self.label, name, limit)
        return data

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[FileStream]:
        size = self._stat(name).st_size
        with self._path(name).open("rb") as handle:
            yield FileStream(size, iter(lambda: handle.read(READ_SIZE), b""))

    def close(self) -> None:
        pass


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads a PAX or GNU long-name payload whole into memory: bound it as Go does."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENSION_TYPES and self.size > MAX_EXTENSION:
            raise tarfile.HeaderError("an extension header of %d bytes" % self.size)
        member: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member


_EXTENSION_TYPES = frozenset(
    (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
)


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    offset: int  # of the data, in the decompressed stream
    link: str | None  # resolved target name of a symlink or hard link


class TarFiles:
    """Files of a tar archive, plain or compressed, found by name (links followed)."""

    def __init__(self, path: Path, label: str | None = None) -> None:
        self.path = path
        self.label = label or str(path)
        with path.open("rb") as handle:
            self.compression = sniff(handle.read(6))
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._members: dict[str, _Member] = {}
        self._small: dict[str, bytes] = {}
        self._heads: dict[str, bytes] = {}
        try:
            self._index()
        except BaseException:
            os.close(self._fd)
            raise

    def _index(self) -> None:
        kept = 0
        try:
            with self._stream() as tar:
                for info in tar:
                    name = clean_name(info.name)
                    if not name or info.isdir():
                        continue
                    link = None
                    if info.issym():
                        link = clean_name(posixpath.join(posixpath.dirname(name), info.linkname))
                    elif info.islnk():
                        link = clean_name(info.linkname)
                    elif not info.isfile():
                        continue
                    if len(self._members) >= MAX_MEMBERS:
                        raise ManifestError(f"{self.label}: more than {MAX_MEMBERS} files; not an image archive")
                    self._members[name] = _Member(name, info.size, info.offset_data, link)
                    if self.compression == PLAIN or link is not None:
                        continue
                    handle = tar.extractfile(info)
                    assert handle is not None
                    if info.size <= SMALL_MEMBER and kept < SMALL_TOTAL:
                        self._small[name] = handle.read()
                        kept += info.size
                    else:
                        self._heads[name] = handle.read(HEAD_SIZE)
        except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
            raise ManifestError(f"{self.label}: not a readable tar archive ({exc})") from None
        if not self._members:
            raise ManifestError(f"{self.label}: not a tar archive, or an empty one")

    @contextlib.contextmanager
    def _stream(self) -> Iterator[tarfile.TarFile]:
        """The archive from its start: a plain one seeking over member data, a compressed one in
        tarfile's stream mode, decompressed as it is read."""
        with self.path.open("rb") as raw:
            if self.compression == PLAIN:
                with tarfile.open(fileobj=raw, mode="r:", tarinfo=_BoundedTarInfo) as tar:
                    yield tar
                return
            decompressed = _decompressor(raw, self.compression)
            try:
                with tarfile.open(fileobj=decompressed, mode="r|", tarinfo=_BoundedTarInfo) as tar:
                    yield tar
            finally:
                decompressed.close()

    def _member(self, name: str) -> _Member:
        wanted = clean_name(name)
        for _ in range(MAX_LINK_DEPTH):
            member = self._members.get(wanted)
            if member is None:
                raise ManifestError(f"{self.label}: {name} is missing from the archive")
            if member.link is None:
                return member
            wanted = member.link
        raise ManifestError(f"{self.label}: too many links resolving {name}")

    def exists(self, name: str) -> bool:
        try:
            self._member(name)
        except ManifestError:
            return False
        return True

    def size(self, name: str) -> int:
        return self._member(name).size

    def head(self, name: str) -> bytes:
        member = self._member(name)
        if self.compression == PLAIN:
            return os.pread(self._fd, min(HEAD_SIZE, member.size), member.offset)
        return self._small.get(member.name, b"")[:HEAD_SIZE] or self._heads.get(member.name, b"")

    def read(self, name: str, limit: int) -> bytes:
        member = self._member(name)
        if member.size > limit:
            raise _too_large(self.label, name, limit)
        if member.name in self._small:
            return self._small[member.name]
        with self.open(name) as stream:
            return b"".join(stream.iter_chunks())

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[FileStream]:
        member = self._member(name)
        if self.compression == PLAIN:
            yield FileStream(member.size, self._pread(member))
            return
        if member.name in self._small:
            yield FileStream(member.size, iter([self._small[member.name]]))
            return
        with self._stream() as tar:
            yield FileStream(member.size, self._streamed(tar, member))

    def _pread(self, member: _Member) -> Iterator[bytes]:
        position, end = member.offset, member.offset + member.size
        while position < end:
            chunk = os.pread(self._fd, min(READ_SIZE, end - position), position)
            if not chunk:
                raise ManifestError(f"{self.label}: archive truncated inside {member.name}")
            position += len(chunk)
            yield chunk

    def _streamed(self, tar: tarfile.TarFile, member: _Member) -> Iterator[bytes]:
        try:
            for info in tar:
                if info.offset_data == member.offset and clean_name(info.name) == member.name:
                    handle = tar.extractfile(info)
                    assert handle is not None
                    yield from iter(lambda: handle.read(READ_SIZE), b"")
                    return
        except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
            raise ManifestError(f"{self.label}: archive unreadable at {member.name} ({exc})") from None
        raise ManifestError(f"{self.label}: {member.name} vanished from the archive")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _too_large(label: str, name: str, limit: int) -> ManifestError:
    return ManifestError(f"{label}: {name} is larger than {limit} bytes; refusing it")


def _decompressor(raw: IO[bytes], compression: str) -> IO[bytes]:
    if compression == GZIP:
        return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if compression == BZIP2:
        return bz2.BZ2File(raw)
    return lzma.LZMAFile(raw)
