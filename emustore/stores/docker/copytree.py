"""The tree `docker cp` copies, as its tar archive carries it, and its extraction on either side.

`copy_tree` walks the source (a host dir, or the container's merged view; no symlink is ever
followed) into entries holding what the CLI's tar keeps: type, mode, owner, mtime in whole
seconds, link targets, hard links within the copy, security.capability (no other xattr).
Every entry is checked against the destination before anything is written (dockerd's
refusals: a dir over a non-dir or the
reverse, a symlink pointing out of the extraction dir; and emustore's: anything but files, dirs
and symlinks), then written afresh in a dir this copy made or checked, so nothing lands outside
the extraction dir. Times are those dockerd's untar sets: the mtime of the header, atime = mtime
for files and symlinks, the Unix epoch for dirs.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from emustore.fsutil import remove_tree
from emustore.stores.docker.containerfs import OPAQUE_XATTR, ROOT, LayerStack, MergedDir, absolute, copy_up_dir
from emustore.stores.docker.copypaths import CopyError

COPY_CHUNK = 1 << 20
CAPABILITY_XATTR = "security.capability"


@dataclass(frozen=True)
class Entry:
    """One member of the copy, named below the extraction dir (ROOT: that dir itself)."""

    rel: PurePosixPath
    source: Path  # the entry on the host (a host file, or the diff entry the container shows)
    kind: str  # "d", "f" or "l"
    mode: int
    uid: int
    gid: int
    mtime: int  # whole seconds, as the tar header carries it
    link: str  # symlink target
    first: PurePosixPath | None  # a hard link: the entry copied before with the same inode
    capability: bytes | None  # security.capability, the one xattr docker cp's tar carries


class SourceTree(Protocol):
    def entry(self, sub: PurePosixPath) -> Path: ...

    def children(self, sub: PurePosixPath) -> list[str]: ...

    def shown(self, sub: PurePosixPath) -> str: ...


class HostTree:
    """A host file or dir tree; `top` has no symlink before its last component."""

    def __init__(self, top: Path) -> None:
        self.top = top

    def entry(self, sub: PurePosixPath) -> Path:
        return self.top.joinpath(*sub.parts)

    def children(self, sub: PurePosixPath) -> list[str]:
        return sorted(os.listdir(self.entry(sub)))

    def shown(self, sub: PurePosixPath) -> str:
        return str(self.entry(sub))


class ContainerTree:
    """A tree in a container's merged view, from the resolved path `top`; each dir is stepped
    into once from its parent."""

    def __init__(self, stack: LayerStack, top: PurePosixPath) -> None:
        self.stack = stack
        self.top = top
        self._dirs: dict[PurePosixPath, MergedDir] = {}

    def _dir(self, sub: PurePosixPath) -> MergedDir:
        found = self._dirs.get(sub)
        if found is None:
            parent = self._dirs.get(sub.parent) if sub.parts else None
            found = parent.child(sub.name) if parent is not None else self.stack.merged_dir(self.top / sub)
            self._dirs[sub] = found
        return found

    def entry(self, sub: PurePosixPath) -> Path:
        found = self.stack.lookup(self.top) if sub == ROOT else self._dir(sub.parent).entry(sub.name)
        if found is None:
            raise CopyError("No such file in the container: %s" % self.shown(sub))
        return found

    def children(self, sub: PurePosixPath) -> list[str]:
        return self._dir(sub).names()

    def shown(self, sub: PurePosixPath) -> str:
        return absolute(self.top / sub)


class Destination(Protocol):
    keeps_owner: bool  # dockerd chowns to the header's ids; the CLI does not (NoLchown)
    shown_root: str  # the extraction dir, absolute on its side

    def path(self, rel: PurePosixPath) -> Path: ...

    def existing(self, rel: PurePosixPath) -> os.stat_result | None: ...

    def merge_dir(self, rel: PurePosixPath) -> None: ...

    def clear(self, rel: PurePosixPath) -> None: ...

    def made_dir(self, rel: PurePosixPath) -> None: ...


class HostDestination:
    """A host dir (resolved) the CLI extracts into."""

    keeps_owner = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shown_root = str(root)

    def path(self, rel: PurePosixPath) -> Path:
        return self.root.joinpath(*rel.parts)

    def existing(self, rel: PurePosixPath) -> os.stat_result | None:
        try:
            return self.path(rel).lstat()
        except FileNotFoundError:
            return None

    def merge_dir(self, rel: PurePosixPath) -> None:
        """An existing dir takes the copy's entries as it is."""

    def clear(self, rel: PurePosixPath) -> None:
        remove_tree(self.path(rel))

    def made_dir(self, rel: PurePosixPath) -> None:
        """Nothing to mark on the host."""


class UpperDestination:
    """A dir of a container's merged view (resolved): written into its upper dir as overlayfs would."""

    keeps_owner = True

    def __init__(self, stack: LayerStack, root: PurePosixPath) -> None:
        self.stack = stack
        self.root = root
        self.shown_root = absolute(root)

    def path(self, rel: PurePosixPath) -> Path:
        return self.stack.upper.joinpath(*(self.root / rel).parts)

    def existing(self, rel: PurePosixPath) -> os.stat_result | None:
        found = self.stack.lookup(self.root / rel)
        return None if found is None else found.lstat()

    def merge_dir(self, rel: PurePosixPath) -> None:
        """A dir the merged view shows from a lower layer is copied up before entries go in."""
        self._parents(rel)
        target = self.path(rel)
        if not os.path.lexists(target):
            found = self.stack.lookup(self.root / rel)
            assert found is not None
            copy_up_dir(found, target)

    def clear(self, rel: PurePosixPath) -> None:
        """Room for a new entry: parents copied up, the upper's entry (or whiteout) dropped."""
        self._parents(rel)
        remove_tree(self.path(rel))

    def _parents(self, rel: PurePosixPath) -> None:
        """The extraction dir and its parents in the upper dir; below it, the copy made or
        merged each parent before its entries."""
        if len(rel.parts) == 1:
            self.stack.ensure_parents(self.root / rel)

    def made_dir(self, rel: PurePosixPath) -> None:
        """A dir made where a lower layer shows something is opaque, as overlayfs makes it."""
        if self.stack.lookup(self.root / rel, below_upper=True) is not None:
            os.setxattr(self.path(rel), OPAQUE_XATTR, b"y", follow_symlinks=False)


def walk(tree: SourceTree, top: str) -> Iterator[Entry]:
    """The source's entries in the tar's order (depth first, names sorted), renamed below `top`."""
    first_of: dict[tuple[int, int], PurePosixPath] = {}
    pending = [ROOT]
    while pending:
        sub = pending.pop()
        path = tree.entry(sub)
        st = path.lstat()
        rel = PurePosixPath(top, *sub.parts)
        if stat.S_ISDIR(st.st_mode):
            kind = "d"
            pending.extend(sub / name for name in reversed(tree.children(sub)))
        elif stat.S_ISREG(st.st_mode):
            kind = "f"
        elif stat.S_ISLNK(st.st_mode):
            kind = "l"
        else:
            raise CopyError("only files, directories and symlinks can be copied: %s" % tree.shown(sub))
        first = None
        if kind != "d" and st.st_nlink > 1:
            first = first_of.setdefault((st.st_dev, st.st_ino), rel)
        yield Entry(
            rel, path, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns // 1_000_000_000,
            os.readlink(path) if kind == "l" else "", first if first != rel else None,
            _capability(path) if kind != "l" else None,
        )


def _capability(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def _check(entry: Entry, dest: Destination) -> os.stat_result | None:
    """dockerd's refusals for one entry; what the destination holds there now."""
    if entry.rel == ROOT:
        return None
    current = dest.existing(entry.rel)
    shown = posixpath.join(dest.shown_root, *entry.rel.parts)
    if current is not None and stat.S_ISDIR(current.st_mode) != (entry.kind == "d"):
        if entry.kind == "d":
            raise CopyError("cannot overwrite non-directory %s with a directory" % shown)
        raise CopyError("cannot overwrite directory %s with a non-directory" % shown)
    if entry.kind == "l" and not entry.link.startswith("/"):
        pointed = posixpath.normpath(posixpath.join(posixpath.dirname(shown), entry.link))
        root = dest.shown_root.rstrip("/")
        if pointed != dest.shown_root and not pointed.startswith(root + "/"):
            raise CopyError("invalid symlink %s -> %s (it leaves %s)" % (shown, entry.link, dest.shown_root))
    return current


def copy_tree(tree: SourceTree, top: str, dest: Destination) -> None:
    """Copy the tree below `top` in the destination, all of it checked before anything is written."""
    for entry in walk(tree, top):
        _check(entry, dest)
    dirs = []
    for entry in walk(tree, top):
        current = _check(entry, dest)
        if entry.rel == ROOT:
            continue  # the contents of a dir into an existing dir: that dir stays as it is
        target = dest.path(entry.rel)
        if entry.kind == "d":
            if current is None:
                dest.clear(entry.rel)
                os.mkdir(target, 0o700)
                dest.made_dir(entry.rel)
            else:
                dest.merge_dir(entry.rel)
            dirs.append(entry)
            continue
        dest.clear(entry.rel)
        if entry.first is not None:
            os.link(dest.path(entry.first), target, follow_symlinks=False)
        elif entry.kind == "l":
            os.symlink(entry.link, target)
            if dest.keeps_owner:
                os.lchown(target, entry.uid, entry.gid)
            os.utime(target, (entry.mtime, entry.mtime), follow_symlinks=False)
        else:
            _copy_file(entry, target, dest.keeps_owner)
    for entry in dirs:
        fd = os.open(dest.path(entry.rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _set_metadata(fd, entry, dest.keeps_owner, atime=0)
        finally:
            os.close(fd)


def _copy_file(entry: Entry, target: Path, keeps_owner: bool) -> None:
    """A new file at `target` (never through what was there) with the entry's bytes and metadata."""
    source = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            raise CopyError("changed while being copied: %s" % entry.source)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(source, "rb", closefd=False) as reader, open(fd, "wb") as writer:
            shutil.copyfileobj(reader, writer, COPY_CHUNK)
            writer.flush()
            _set_metadata(fd, entry, keeps_owner, atime=entry.mtime)
    finally:
        os.close(source)


def _set_metadata(fd: int, entry: Entry, keeps_owner: bool, atime: int) -> None:
    """Owner, then the capability (a chown drops it), mode and times, as dockerd's untar sets them."""
    if keeps_owner:
        os.fchown(fd, entry.uid, entry.gid)
    if entry.capability is not None:
        os.setxattr(fd, CAPABILITY_XATTR, entry.capability)
    os.fchmod(fd, entry.mode)
    os.utime(fd, (atime, entry.mtime))

