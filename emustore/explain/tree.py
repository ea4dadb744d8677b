"""The files of one layer's diff dir, read for showing: lstat only, never through a link.

A layer is an untrusted tree. The walk is iterative, never follows a symlink (directories are
entered only when lstat says they are directories), reads at most `Budget.entries` entries for
the whole image and descends at most MAX_DEPTH levels; what it leaves out is counted, not read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from emustore.fsck.findings import is_real_dir

MAX_DEPTH = 256
MAX_ENTRIES = 500_000  # for a whole image: about 150 MB of entries in memory
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")  # rootful; rootless (userxattr)

KIND_LETTERS = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFCHR: "char",
                stat.S_IFBLK: "block", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One entry of a diff dir; `path` is absolute in the container ("/etc/os-release")."""

    path: str
    mode: int  # st_mode: type and permission bits
    uid: int
    gid: int
    size: int  # st_size (a symlink: its target's length; a device: 0)
    rdev: int = 0  # a device's number
    target: str | None = None  # a symlink's target
    opaque: str | None = None  # the xattr that makes this dir opaque

    @property
    def kind(self) -> str:
        if self.whiteout:
            return "whiteout"
        return KIND_LETTERS.get(stat.S_IFMT(self.mode), "other")

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def whiteout(self) -> bool:
        """overlayfs's deletion mark: a character device 0/0."""
        return stat.S_ISCHR(self.mode) and self.rdev == 0

    @property
    def counted_size(self) -> int:
        """Bytes this entry holds in the layer (regular files only)."""
        return self.size if stat.S_ISREG(self.mode) else 0


@dataclass
class Budget:
    """What the reads of one image may still take, and what they had to leave out."""

    entries: int = MAX_ENTRIES
    skipped: int = 0  # entries not read: past the entry budget, or dirs deeper than MAX_DEPTH

    def take(self) -> bool:
        if self.entries <= 0:
            self.skipped += 1
            return False
        self.entries -= 1
        return True


@dataclass
class LayerFiles:
    """A diff dir's entries sorted by path (the diff root itself left out), and what was skipped."""

    entries: list[FileEntry] = field(default_factory=list)
    skipped: int = 0
    unreadable: list[str] = field(default_factory=list)  # dirs that could not be listed


def display(name: str) -> str:
    """A file name fit for one line: undecodable bytes and control characters escaped."""
    if name.isprintable():
        return name
    raw = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)


def read_layer(diff: Path | None, budget: Budget) -> LayerFiles:
    """Every entry under `diff` (None or not a real directory: nothing), within `budget`."""
    files = LayerFiles()
    if diff is None or not is_real_dir(diff):
        return files
    before = budget.skipped
    stack: list[tuple[str, str, int]] = [(str(diff), "", 0)]  # host dir, container path, depth
    while stack:
        host, shown, depth = stack.pop()
        try:
            with os.scandir(host) as listing:
                found = sorted((item.name, item.path, item.stat(follow_symlinks=False)) for item in listing)
        except OSError:
            files.unreadable.append(shown or "/")
            continue
        for name, path, st in found:
            if not budget.take():
                continue
            entry = _entry(shown + "/" + display(name), path, st)
            files.entries.append(entry)
            if entry.is_dir:
                if depth + 1 < MAX_DEPTH:
                    stack.append((path, entry.path, depth + 1))
                else:
                    budget.skipped += 1
    files.entries.sort(key=lambda e: e.path.split("/"))
    files.skipped = budget.skipped - before
    return files


def _entry(shown: str, path: str, st: os.stat_result) -> FileEntry:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return FileEntry(shown, mode, st.st_uid, st.st_gid, st.st_size, target=display(os.readlink(path)))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return FileEntry(shown, mode, st.st_uid, st.st_gid, 0, rdev=st.st_rdev)
    if stat.S_ISDIR(mode):
        return FileEntry(shown, mode, st.st_uid, st.st_gid, 0, opaque=_opaque(path))
    return FileEntry(shown, mode, st.st_uid, st.st_gid, st.st_size)


def _opaque(path: str) -> str | None:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return name
        except OSError:
            continue
    return None
