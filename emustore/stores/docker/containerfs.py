"""A container's root as overlayfs shows it, and writes into its upper layer like overlayfs does.

`LayerStack` looks paths up through diff dirs (upper first) with overlay's whiteouts (0/0 char
devices) and opaque dirs; writes into the top dir copy parent dirs up first, keeping their
mode, owner, times and xattrs, as the kernel does.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from emustore.errors import EmustoreError

OPAQUE_XATTR = "trusted.overlay.opaque"

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


class ContainerPathError(EmustoreError):
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
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


class LayerStack:
    """Diff dirs from the top (writable) one down to the image's base layer."""

    def __init__(self, diffs: Sequence[Path]) -> None:
        self.diffs = list(diffs)
        self.upper = self.diffs[0]

    def lookup(self, rel: PurePosixPath) -> Path | None:
        """The diff entry the merged view shows at `rel` (no symlinks followed), or None."""
        if str(rel) == ".":
            return self.upper
        for diff in self.diffs:
            hidden = False
            for depth, _ in enumerate(rel.parts[:-1], 1):
                prefix = diff / PurePosixPath(*rel.parts[:depth])
                try:
                    st = prefix.lstat()
                except FileNotFoundError:
                    break
                if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                    hidden = True
                    break
                if _is_opaque(prefix):
                    hidden = True  # lower layers are hidden below this dir
                    break
            candidate = diff / rel
            try:
                st = candidate.lstat()
            except (FileNotFoundError, NotADirectoryError):
                if hidden:
                    return None
                continue
            return None if _is_whiteout(st) else candidate
        return None

    def is_dir(self, rel: PurePosixPath) -> bool:
        found = self.lookup(rel)
        return found is not None and stat.S_ISDIR(found.lstat().st_mode)

    def in_lower(self, rel: PurePosixPath) -> bool:
        return LayerStack(self.diffs[1:]).lookup(rel) is not None if len(self.diffs) > 1 else False

    def ensure_parents(self, rel: PurePosixPath) -> None:
        """Make rel's parent dirs exist in the upper dir, copying up those a lower layer has."""
        for depth in range(1, len(rel.parts)):
            sub = PurePosixPath(*rel.parts[:depth])
            target = self.upper / sub
            if target.is_dir() and not target.is_symlink():
                continue
            found = self.lookup(sub)
            if found is None:
                self.make_dir(sub)
            elif stat.S_ISDIR(found.lstat().st_mode):
                copy_up_dir(found, target)
            else:
                raise ContainerPathError("not a directory in the container: /%s" % sub)

    def make_dir(self, rel: PurePosixPath) -> None:
        """A new 0755 dir (owner root); over a whiteout it is opaque, as overlayfs makes it."""
        target = self.upper / rel
        over_whiteout = os.path.lexists(target)
        if over_whiteout:
            os.unlink(target)
        os.mkdir(target, 0o755)
        os.chmod(target, 0o755)
        if over_whiteout:
            os.setxattr(target, OPAQUE_XATTR, b"y", follow_symlinks=False)

    def clear_whiteout(self, rel: PurePosixPath) -> None:
        """Drop a whiteout at rel in the upper dir before a file or link takes its place."""
        target = self.upper / rel
        if os.path.lexists(target) and _is_whiteout(target.lstat()):
            os.unlink(target)

    def add(self, source: Path, rel: PurePosixPath) -> None:
        """Copy a host file, symlink or directory tree to `rel` in the upper dir, as `docker cp` extracts it.

    Modes, times and owners come from the host (the CLI's tar carries them; dockerd chowns)."""
        self.ensure_parents(rel)
        target = self.upper / rel
        if target.is_dir() and not target.is_symlink() and not source.is_dir():
            raise ContainerPathError("cannot overwrite directory /%s with a file" % rel)
        over_whiteout = os.path.lexists(target) and _is_whiteout(target.lstat())
        _copy_tree(source, target)
        if over_whiteout and target.is_dir() and not target.is_symlink():
            os.setxattr(target, OPAQUE_XATTR, b"y", follow_symlinks=False)

    def remove(self, rel: PurePosixPath) -> None:
        """Delete `rel` from the merged view: drop the upper copy, mask lower ones with a 0/0 whiteout."""
        if str(rel) == "." or self.lookup(rel) is None:
            raise ContainerPathError("No such file or directory in the container: /%s" % rel)
        target = self.upper / rel
        if os.path.lexists(target):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                os.unlink(target)
        if self.in_lower(rel):
            self.ensure_parents(rel)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))


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


def check_copyable(source: Path) -> None:
    """Refuse, before anything is written, a tree holding more than files, dirs and symlinks."""
    for path in [source, *(source.rglob("*") if source.is_dir() and not source.is_symlink() else ())]:
        mode = path.lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            raise ContainerPathError("only files, directories and symlinks can be copied: %s" % path)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy `source` to `target`, merging into an existing dir and replacing anything else."""
    st = source.lstat()
    if os.path.lexists(target) and not (stat.S_ISDIR(st.st_mode) and target.is_dir() and not target.is_symlink()):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            os.unlink(target)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISDIR(st.st_mode):
        if not target.is_dir():
            os.mkdir(target, 0o700)
        for child in sorted(os.listdir(source)):
            _copy_tree(source / child, target / child)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(source, target, follow_symlinks=False)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    else:
        raise ContainerPathError("only files, directories and symlinks can be copied: %s" % source)  # checked before
    os.lchown(target, st.st_uid, st.st_gid)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def write_init_layer(stack: LayerStack) -> None:
    """dockerd's init layer into stack.upper (daemon/initlayer, observed in docs/container-format.md).

    For each INIT_PATHS entry: every non-directory on the way (the entry included) is unlinked;
    then, unless a directory is there, missing parents are made (0755) and the entry is created
    (dirs 0755, empty files 0755, the mtab symlink), all owned by root.
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
        target = stack.upper / rel
        if kind == "file":
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
            os.fchmod(fd, 0o755)
            os.close(fd)
        else:
            os.symlink(kind, target)
