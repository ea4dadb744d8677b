"""A container's root as overlayfs shows it, and writes into its upper layer like overlayfs does.

`LayerStack` looks paths up through diff dirs (upper first) with overlay's whiteouts (0/0 char
devices) and opaque dirs, and never through a symlink on the host: a container path is first
resolved with `resolve`, inside the container (its root as "/", ".." stops there, lower layers'
symlinks included), as dockerd resolves it in the mounted container. Writes into the top dir
copy parent dirs up first, keeping their mode, owner, times and xattrs, as the kernel does.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from emustore.errors import EmustoreError
from emustore.fsutil import remove_tree
from emustore.layers.rootfs import MAX_SYMLINKS

OPAQUE_XATTR = "trusted.overlay.opaque"
ROOT = PurePosixPath(".")

# The init layer dockerd 20.10 adds below every container (daemon/initlayer), in creation order:
# path -> "dir" | "file" | symlink target.
INIT_PATHS = (
    ("/dev/pts", "dir"),
    ("/dev/shm", "dir"),
    ("/proc", "dir"),
    ("/sys", "dir"),
    ("/.dockerenv", "file"),
    ("/etc/resolv.conf", "file"),
    ("/etc/hosts", "file"),
    ("/etc/hostname", "file"),
    ("/dev/console", "file"),
    ("/etc/mtab", "/proc/mounts"),
)


def one_line(text: str) -> str:
    """`text` with what is not printable (a newline in a file name, undecodable bytes) escaped."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class PathError(EmustoreError):
    """An error naming paths, which may hold any character but "/" and NUL: kept to one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class ContainerPathError(PathError):
    """A path in the container that cannot be used for the change asked."""


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def clean(path: str) -> PurePosixPath:
    """The container path as a relative path without `.`/`..` (lexically, like filepath.Clean)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts) if parts else ROOT


def absolute(rel: PurePosixPath) -> str:
    """A resolved or cleaned container path as the container sees it ("/" for its root)."""
    return "/" + "/".join(rel.parts)


class MergedDir:
    """One dir of the merged view: its host path in each diff that may show entries there, upper
    first (None where that diff has nothing). The diffs below a non-dir or whiteout on the way,
    or below an opaque dir, show nothing and are left out. `child` steps one component down
    with one lstat per diff, so walking a path never goes back over its parents, and never
    through a symlink on the host: every component is lstat-ed as it is stepped into."""

    def __init__(self, paths: Sequence[str | None]) -> None:
        self.paths = tuple(paths)

    def child(self, name: str) -> MergedDir:
        paths: list[str | None] = []
        for path in self.paths:
            if path is None:
                paths.append(None)
                continue
            here = path + "/" + name
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                paths.append(None)
                continue
            if not stat.S_ISDIR(st.st_mode):
                break  # a file, link or whiteout here hides this diff's and lower ones' dirs
            paths.append(here)
            if _is_opaque(Path(here)):
                break
        return MergedDir(paths)

    def entry(self, name: str, below_upper: bool = False) -> Path | None:
        """The diff entry shown as `name` in this dir (`below_upper`: not counting the upper's)."""
        for index, path in enumerate(self.paths):
            if path is None or (below_upper and index == 0):
                continue
            here = path + "/" + name
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                continue
            return None if _is_whiteout(st) else Path(here)
        return None

    def names(self) -> list[str]:
        """The names shown in this dir, sorted."""
        names: set[str] = set()
        for path in self.paths:
            if path is not None:
                names.update(os.listdir(path))
        return sorted(name for name in names if self.entry(name) is not None)


class LayerStack:
    """Diff dirs from the top (writable) one down to the image's base layer."""

    def __init__(self, diffs: Sequence[Path]) -> None:
        self.diffs = list(diffs)
        self.upper = self.diffs[0]

    # the merged view

    def root_dir(self) -> MergedDir:
        return MergedDir([str(diff) for diff in self.diffs])

    def merged_dir(self, rel: PurePosixPath) -> MergedDir:
        """The dir `rel` (resolved) of the merged view, stepped into from the root."""
        here = self.root_dir()
        for part in rel.parts:
            here = here.child(part)
        return here

    def lookup(self, rel: PurePosixPath, below_upper: bool = False) -> Path | None:
        """The diff entry the merged view shows at `rel` (resolved: no symlink before its last
        component), or None. `below_upper`: what shows there without the upper dir's own entry."""
        if not rel.parts:
            return None if below_upper else self.upper
        return self.merged_dir(rel.parent).entry(rel.name, below_upper)

    def children(self, rel: PurePosixPath) -> list[str]:
        """The names the merged view shows in the dir `rel` (resolved), sorted."""
        return self.merged_dir(rel).names()

    def is_dir(self, rel: PurePosixPath) -> bool:
        found = self.lookup(rel)
        return found is not None and stat.S_ISDIR(found.lstat().st_mode)

    def resolve(self, path: str, follow_last: bool = False) -> PurePosixPath:
        """Where the container path `path` leads: cleaned lexically (as docker does), then every
        symlink met followed with the container's root as "/" (".." stops there), the last
        component only with `follow_last`. The result has no symlink before its last component."""
        cleaned = clean(path)
        if not cleaned.parts:
            return ROOT
        real, dirs = self._follow(list(cleaned.parts[:-1]), [], [self.root_dir()])
        if not follow_last:
            return PurePosixPath(*real, cleaned.name)
        return PurePosixPath(*self._follow([cleaned.name], real, dirs)[0])

    def _follow(self, parts: list[str], real: list[str], dirs: list[MergedDir]) -> tuple[list[str], list[MergedDir]]:
        """Walk `parts` from the resolved dir `real` (`dirs`: the merged dirs from the root to
        it), a symlink's target taking its place in the walk; each step costs one lstat per diff."""
        real, dirs = list(real), list(dirs)
        pending = parts[::-1]
        links = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if real:
                    real.pop()
                    dirs.pop()
                continue
            found = dirs[-1].entry(part)
            if found is not None and found.is_symlink():
                links += 1
                if links > MAX_SYMLINKS:
                    shown = absolute(PurePosixPath(*real, part))
                    raise ContainerPathError("%s in the container: %s" % (os.strerror(errno.ELOOP), shown))
                target = os.readlink(found)
                if target.startswith("/"):
                    real, dirs = [], dirs[:1]
                pending.extend(reversed(target.split("/")))
                continue
            real.append(part)
            dirs.append(dirs[-1].child(part))
        return real, dirs

    # writing into the upper dir (paths resolved)

    def ensure_parents(self, rel: PurePosixPath) -> None:
        """Make rel's parent dirs exist in the upper dir, copying up those a lower layer has."""
        for depth in range(1, len(rel.parts)):
            sub = PurePosixPath(*rel.parts[:depth])
            target = self.upper.joinpath(*sub.parts)
            try:
                if stat.S_ISDIR(target.lstat().st_mode):
                    continue
            except FileNotFoundError:
                pass
            found = self.lookup(sub)
            if found is None:
                self.make_dir(sub)
            elif stat.S_ISDIR(found.lstat().st_mode):
                copy_up_dir(found, target)
            else:
                raise ContainerPathError("not a directory in the container: %s" % absolute(sub))

    def make_dir(self, rel: PurePosixPath) -> None:
        """A new 0755 dir (owner root); over a whiteout it is opaque, as overlayfs makes it."""
        target = self.upper.joinpath(*rel.parts)
        over_whiteout = os.path.lexists(target)
        if over_whiteout:
            os.unlink(target)
        os.mkdir(target, 0o755)
        os.chmod(target, 0o755)
        if over_whiteout:
            os.setxattr(target, OPAQUE_XATTR, b"y", follow_symlinks=False)

    def clear_whiteout(self, rel: PurePosixPath) -> None:
        """Drop a whiteout at rel in the upper dir before a file or link takes its place."""
        target = self.upper.joinpath(*rel.parts)
        if os.path.lexists(target) and _is_whiteout(target.lstat()):
            os.unlink(target)

    def remove(self, rel: PurePosixPath, shown: str | None = None) -> None:
        """Delete `rel` (resolved) from the merged view: drop the upper copy, mask what a lower
        layer shows there with a 0/0 whiteout. `shown`: the path as the user gave it."""
        if not rel.parts:
            raise ContainerPathError("cannot remove the container's root directory: %s" % (shown or "/"))
        if self.lookup(rel) is None:
            raise ContainerPathError("No such file or directory in the container: %s" % (shown or absolute(rel)))
        target = self.upper.joinpath(*rel.parts)
        remove_tree(target)
        if self.lookup(rel, below_upper=True) is not None:
            self.ensure_parents(rel)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def delete(self, path: str) -> None:
        """`--rm-file PATH`: what `rm -r PATH` run in the container deletes (a last symlink itself)."""
        self.remove(self.resolve(path), path)


def copy_up_dir(lower: Path, target: Path) -> None:
    """An upper copy of a lower dir: same mode, owner, xattrs and times, no entries."""
    st = lower.lstat()
    os.mkdir(target, 0o700)
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    for name in os.listxattr(lower, follow_symlinks=False):
        if not name.startswith("trusted.overlay."):
            os.setxattr(target, name, os.getxattr(lower, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def write_init_layer(stack: LayerStack) -> None:
    """dockerd's init layer into stack.upper (daemon/initlayer, observed in docs/container-format.md).

    For each INIT_PATHS entry: every non-directory on the way (the entry included) is unlinked;
    then, unless a directory is there, missing parents are made (0755) and the entry is created
    (dirs 0755, empty files 0755, the mtab symlink), all owned by root. Every component before
    the one looked at is a directory by then, so no symlink of the image is ever followed.
    """
    for path, kind in INIT_PATHS:
        rel = clean(path)
        for depth in range(1, len(rel.parts) + 1):
            sub = PurePosixPath(*rel.parts[:depth])
            found = stack.lookup(sub)
            if found is not None and not stat.S_ISDIR(found.lstat().st_mode):
                stack.remove(sub)
        if stack.is_dir(rel):
            continue
        stack.ensure_parents(rel)
        if kind == "dir":
            stack.make_dir(rel)
            continue
        stack.clear_whiteout(rel)
        target = stack.upper.joinpath(*rel.parts)
        if kind == "file":
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
            os.fchmod(fd, 0o755)
            os.close(fd)
        else:
            os.symlink(kind, target)
