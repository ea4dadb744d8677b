"""Applying tar members to an overlay2 diff dir exactly as dockerd 20.10's untar does.

Follows pkg/archive's Unpack with the overlay whiteout converter (format doc §9): names
are cleaned and resolved with the diff dir as root, existing entries are replaced unless
both are directories, `.wh.<name>` becomes a 0/0 character device, `.wh..wh..opq` the
`trusted.overlay.opaque=y` xattr, and owner, xattrs, mode and times follow in Go's order.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable

import xattr

from emustore.errors import LayerError
from emustore.fsutil import remove_tree
from emustore.layers.gopath import go_clean, go_dir
from emustore.layers.rootfs import RootedPaths
from emustore.layers.size import layer_size
from emustore.layers.tarstream import TarHeader
from emustore.layers.unprivileged import Unwritable

WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_TIME_NS = (1 << 63) - 1

REG, LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO, GLOBAL = (ord(c) for c in "0123456g")
_DEVICE_TYPES = {CHAR: stat.S_IFCHR, BLOCK: stat.S_IFBLK, FIFO: stat.S_IFIFO}
_IGNORED_XATTR_ERRORS = (errno.ENOTSUP, errno.EPERM)


def _clamp(ns: int) -> int:
    """Go's system.Chtimes: times before the epoch or past 2262 become the epoch."""
    return ns if 0 <= ns <= MAX_TIME_NS else 0


def _file_times(hdr: TarHeader) -> tuple[int, int]:
    """(atime, mtime) in ns as Chtimes sets them: atime is never before mtime, both clamped."""
    atime = hdr.mtime_ns if hdr.atime_ns is None else max(hdr.atime_ns, hdr.mtime_ns)
    return _clamp(atime), _clamp(hdr.mtime_ns)


def _dir_and_base(cleaned: bytes) -> tuple[bytes, bytes]:
    """Go's filepath.Dir and Base of an already cleaned path, without cleaning it again."""
    cut = cleaned.rfind(b"/")
    if cut < 0:
        return b".", cleaned
    if cleaned == b"/":
        return b"/", b"/"
    return cleaned[:cut] or b"/", cleaned[cut + 1 :]


def _mkdev(major: int, minor: int) -> int:
    """pkg/system.Mkdev's device number encoding."""
    return ((major & 0xFFF) << 8) | (minor & 0xFF) | ((minor & 0xFFF00) << 12)


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


class Extractor:
    """Writes one layer's members into `diff_dir`; call `finish()` after the last member.

    Without root, what cannot be written (owners, devices, privileged xattrs) is skipped and
    collected in `unwritable`; directory modes are then applied last so that children fit.
    `symlink_xattrs_on_target`: a symlink's xattrs go to what it resolves to inside the layer,
    as dockerd 28 sets them (20.10 and 26 set them on the link, where user.* ones fail)."""

    def __init__(
        self,
        diff_dir: str,
        opaque_xattr: str = OPAQUE_XATTR,
        symlink_xattrs_on_target: bool = False,
        skipped_xattrs: tuple[bytes, ...] = (),
    ) -> None:
        self.diff_dir = diff_dir
        self.paths = RootedPaths(os.fsencode(os.path.abspath(diff_dir)))
        self.opaque_xattr = opaque_xattr
        self.symlink_xattrs_on_target = symlink_xattrs_on_target
        self.skipped_xattrs = skipped_xattrs  # prefixes of a layer's xattrs never set (containerd: trusted.)
        self.unwritable = Unwritable() if os.geteuid() != 0 else None
        self._dirs: list[tuple[bytes, int | None, int]] = []
        self._modes: list[tuple[bytes, int]] = []  # directory modes deferred without root
        self._parents: set[bytes] = set()  # parents seen to exist since the last removal
        self._size: int | None = 0  # layer_size() as counted while creating; None after a removal

    def apply(self, hdr: TarHeader, data: Iterable[memoryview]) -> None:
        """Apply one member; `data` yields its content (only consumed for regular files)."""
        try:
            self._apply(hdr, data)
        except OSError as exc:
            raise LayerError(
                "failed to register layer: %s: %s" % (_show(hdr.name), exc.strerror or exc)
            ) from None

    def _apply(self, hdr: TarHeader, data: Iterable[memoryview]) -> None:
        if hdr.typeflag == GLOBAL:
            return
        name = go_clean(hdr.name)
        parent, base = _dir_and_base(name)
        if not name.endswith(b"/"):
            if parent not in self._parents:
                try:
                    os.lstat(self.paths.real(parent, follow_last=False))
                    self._parents.add(parent)
                except FileNotFoundError:
                    self._mkdir_all(parent)
                    self._parents.add(parent)
                except OSError:
                    pass
        if name == b"." or name.startswith((b"/", b"..")):  # re-rooted by the full resolution
            path = self.paths.real(name, follow_last=False)
        else:  # the same, from the parts at hand: the parent's resolution is cached
            path = self.paths.real_dir(b"/" + parent if parent != b"." else b"/") + b"/" + base
        special = name == b"." or base.startswith(WHITEOUT_PREFIX) or (
            self.unwritable is not None and hdr.typeflag in (CHAR, BLOCK)
        )
        if special:
            if self._replace(path, name, hdr):
                self._apply_special(path, name, base, hdr)
            return
        try:
            created = self._create(path, hdr, data)
        except FileExistsError:  # rare: make way as dockerd does, then create
            if not self._replace(path, name, hdr):
                return
            created = self._create(path, hdr, data)
        if not created:
            self._set_metadata(path, hdr)
        if hdr.typeflag == DIR:
            self._dirs.append((name, hdr.atime_ns, hdr.mtime_ns))

    def _replace(self, path: bytes, name: bytes, hdr: TarHeader) -> bool:
        """Remove what `path` holds unless both it and the member are directories; False when
        the member is the root itself, which is left alone."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and name == b".":
            return False
        if not (is_dir and hdr.typeflag == DIR):
            self._remove_all(path, is_dir)
        return True

    def _apply_special(self, path: bytes, name: bytes, base: bytes, hdr: TarHeader) -> None:
        """Whiteouts, opaque markers, and device nodes a process without root cannot make."""
        if base == OPAQUE_MARKER:
            self._setxattr(self.paths.real(go_dir(name), follow_last=True), go_dir(name), self.opaque_xattr, b"y", False)
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = go_clean(go_dir(name) + b"/" + base[len(WHITEOUT_PREFIX) :])
            target = self.paths.real(hidden, follow_last=False)
            try:
                os.mknod(target, stat.S_IFCHR, 0)
            except PermissionError:
                if self.unwritable is None:
                    raise
                self.unwritable.whiteouts.append(_show(hidden))
                return
            self._chown(target, hdr.uid, hdr.gid)
            return
        assert self.unwritable is not None
        self.unwritable.device(name, chr(hdr.typeflag), hdr.devmajor, hdr.devminor, hdr.mode & 0o7777)

    def _create(self, path: bytes, hdr: TarHeader, data: Iterable[memoryview]) -> bool:
        """Create the entry (FileExistsError if `path` is taken, but for a directory over a
        directory); True when its metadata was set too (a regular file, through its fd)."""
        kind = hdr.typeflag
        perm = hdr.mode & 0o7777
        if kind == DIR:
            try:
                os.mkdir(path, perm)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise
        elif kind == REG:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, perm)
            if self._size is not None:
                self._size += hdr.size
            try:
                for piece in data:
                    written = os.write(fd, piece)
                    while written < len(piece):  # a short write (rare): the rest
                        piece = piece[written:]
                        written = os.write(fd, piece)
                if self.unwritable is None and not hdr.xattrs:  # same order, no path lookups
                    self._set_file_metadata(fd, hdr, perm)
                    return True
            finally:
                os.close(fd)
        elif kind in _DEVICE_TYPES:
            os.mknod(path, perm | _DEVICE_TYPES[kind], _mkdev(hdr.devmajor, hdr.devminor))
        elif kind == LINK:
            target = self.paths.real(go_clean(b"/" + hdr.linkname), follow_last=False)
            os.link(target, path, follow_symlinks=False)
        elif kind == SYMLINK:
            os.symlink(hdr.linkname, path)
            if self._size is not None:
                self._size += len(hdr.linkname)
        else:
            raise LayerError("unhandled tar header type %d for %s" % (kind, _show(hdr.name)))
        return False

    @staticmethod
    def _set_file_metadata(fd: int, hdr: TarHeader, perm: int) -> None:
        """Owner, mode and times of a new regular file; a chown or chmod that would change
        nothing is skipped (the fresh file already has that owner and mode)."""
        st = os.fstat(fd)
        owned = st.st_uid == hdr.uid and st.st_gid == hdr.gid
        if not owned:
            os.fchown(fd, hdr.uid, hdr.gid)
        if not owned or st.st_mode & 0o7777 != perm:
            os.fchmod(fd, perm)
        mtime, atime = hdr.mtime_ns, hdr.atime_ns
        if atime is None and 0 <= mtime <= MAX_TIME_NS:  # the common case of _file_times
            os.utime(fd, ns=(mtime, mtime))
        else:
            os.utime(fd, ns=_file_times(hdr))

    def _set_metadata(self, path: bytes, hdr: TarHeader) -> None:
        """Owner, xattrs, mode, times: in that order, as createTarFile applies them."""
        self._chown(path, hdr.uid, hdr.gid)
        kind = hdr.typeflag
        if hdr.xattrs and kind == SYMLINK and self.symlink_xattrs_on_target:
            self._set_target_xattrs(hdr)
        else:
            for key, value in hdr.xattrs.items():
                if not key.startswith(self.skipped_xattrs):
                    self._setxattr(path, hdr.name, key.decode("utf-8", "surrogateescape"), value, True)
        if kind == SYMLINK:
            atime = max(hdr.atime_ns if hdr.atime_ns is not None else hdr.mtime_ns, hdr.mtime_ns)
            if 0 <= atime <= MAX_TIME_NS and -MAX_TIME_NS <= hdr.mtime_ns <= MAX_TIME_NS:
                os.utime(path, ns=(atime, hdr.mtime_ns), follow_symlinks=False)
            return
        if kind == LINK and self._link_target_is_symlink(hdr.linkname):
            return
        if kind == DIR and self.unwritable is not None:
            os.chmod(path, hdr.mode & 0o7777 | 0o700)  # writable for its children until finish()
            self._modes.append((hdr.name, hdr.mode & 0o7777))
        else:
            os.chmod(path, hdr.mode & 0o7777)
        os.utime(path, ns=_file_times(hdr))

    def _chown(self, path: bytes, uid: int, gid: int, record: bool = True) -> None:
        """lchown, or without root record the owner it could not set (implicit dirs: not recorded)."""
        if self.unwritable is None:
            os.lchown(path, uid, gid)
        elif record:
            self.unwritable.owner(uid, gid)

    def _setxattr(self, path: bytes, name: bytes, key: str, value: bytes, ignore: bool) -> None:
        """Set one xattr; EPERM/ENOTSUP are ignored when `ignore` (as dockerd does) but recorded
        without root, and an opaque marker refused without root is recorded instead of failing."""
        try:
            xattr.setxattr(path, key, value, symlink=True)
        except OSError as exc:
            if self.unwritable is not None and exc.errno == errno.EPERM:
                if ignore:
                    self.unwritable.xattr(name, key)
                else:
                    self.unwritable.opaque.append(_show(name))
            elif not ignore or exc.errno not in _IGNORED_XATTR_ERRORS:
                raise

    def _set_target_xattrs(self, hdr: TarHeader) -> None:
        """A symlink's xattrs set on its target, resolved inside the layer (dockerd 28): a target
        missing from the layer (dangling, later in the archive, in a lower layer) fails the layer."""
        target = self.paths.resolve(hdr.name)
        inside = os.path.relpath(target, self.paths.root)
        shown = "/" + ("" if inside == b"." else _show(inside))
        for key, value in hdr.xattrs.items():
            name = key.decode("utf-8", "surrogateescape")
            try:
                self._setxattr(target, hdr.name, name, value, True)
            except OSError as exc:
                raise LayerError(
                    'failed to register layer: lsetxattr %s: xattr "%s": %s'
                    % (shown, name, os.strerror(exc.errno or 0).lower())
                ) from None

    def _link_target_is_symlink(self, linkname: bytes) -> bool:
        try:
            return stat.S_ISLNK(os.lstat(self.paths.real(linkname, follow_last=False)).st_mode)
        except OSError:
            return True

    def _mkdir_all(self, cleaned_dir: bytes) -> None:
        """MkdirAll with mode 0755 and root ownership for each directory it creates."""
        done = b""
        for part in cleaned_dir.strip(b"/").split(b"/"):
            if part in (b"", b"."):
                continue
            done += b"/" + part
            try:  # followed inside the root only: a link to a host dir is not a dir here
                st = os.lstat(self.paths.real(done, follow_last=True))
            except FileNotFoundError:
                real = self.paths.real(done, follow_last=False)
                os.mkdir(real, 0o755)
                self._chown(real, 0, 0, record=False)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), done)

    def _remove_all(self, path: bytes, is_dir: bool) -> None:
        if os.path.normpath(path) == self.paths.root:  # only a directory entry may name the root
            raise OSError(errno.EBUSY, "the layer root cannot be replaced")
        if is_dir:
            remove_tree(path)
        else:
            os.unlink(path)
        self.paths.forget()
        self._parents.clear()
        self._size = None

    def layer_size(self) -> int:
        """The layer's size as dockerd measures it (size.py): counted on the way (each new
        regular file and symlink is one inode; hard links add none), walked after a removal."""
        return self._size if self._size is not None else layer_size(self.diff_dir)

    def finish(self) -> None:
        """Re-apply directory times last, so later children did not disturb them (through
        links inside the root, as dockerd's Chtimes follows them chrooted)."""
        name = b""
        try:
            for name, atime, mtime in self._dirs:
                path = self.paths.real(name, follow_last=True)
                os.utime(path, ns=(_clamp(atime if atime is not None else -1), _clamp(mtime)))
            for name, mode in reversed(self._modes):
                os.chmod(self.paths.real(go_clean(name), follow_last=True), mode)
        except OSError as exc:
            raise LayerError("failed to register layer: %s: %s" % (_show(name), exc.strerror or exc)) from None
