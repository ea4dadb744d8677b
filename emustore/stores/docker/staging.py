"""Staging sets: each writer's scratch under tmp/emustore-staging/ (in a containerd root, under the
overlayfs snapshotter's emustore/staging/), owned through an flock.

A pull, load or create stages its work in `<kind>-<random>/`, beside `<kind>-<random>.lock`: a
file it holds an flock on for its whole run. The kernel drops that lock when the process dies,
even on SIGKILL, so a lock nobody holds marks a set whose writer is gone. The next writer into the
root removes such sets, and `fsck --repair` does too; a set whose lock is held is never touched.

The lock file is made (O_EXCL) and locked before its dir, and removed after it: a dir without
its lock file belongs to no live writer. Anything else in the staging dir (the rm- dir `rm` empties
under the root lock, scratch of an older emustore) has no lock and counts as abandoned: removing
the rm- dir of an rm still running only does what that rm is doing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emustore.errors import StoreError
from emustore.fsutil import TEMP_PREFIX, random_hex, remove_tree, unusable_dir
from emustore.stores.docker.layout import DataRoot

LOCK_SUFFIX = ".lock"
KINDS = ("pull", "load", "create", "rm")  # what made a set (or an rm- dir): the prefix of its name
_ATTEMPTS = 5


@dataclass(frozen=True)
class StagingSet:
    """One writer's staging dir, its own while `fd` (an flock on its lock file) stays open."""

    dir: Path
    fd: int

    @property
    def lock(self) -> Path:
        return lock_of(self.dir)

    def remove(self) -> None:
        """Remove the dir, then its lock file, then let the lock go. Should that fail (the disk
        went read-only), what stays is removed by the next writer."""
        try:
            remove_tree(self.dir)
            remove_tree(self.lock)
        except OSError:
            pass
        finally:
            os.close(self.fd)


def lock_of(set_dir: Path) -> Path:
    return set_dir.with_name(set_dir.name + LOCK_SUFFIX)


def kind_of(name: str) -> str:
    """The writer that made a staging entry, from its name (older scratch was a pull's)."""
    prefix = name.split("-", 1)[0]
    return prefix if prefix in KINDS else "pull"


class StagingRoot(Protocol):
    """A store with a staging dir of ours (the Docker data root's tmp/emustore-staging, containerd's
    in the overlayfs snapshotter's dir): what sets are made in."""

    @property
    def root(self) -> Path: ...

    @property
    def staging(self) -> Path: ...

    def prepare_staging(self) -> None: ...


def create_set(layout: StagingRoot, kind: str, role: str = "a data root") -> StagingSet:
    """A new set, locked, in a root made usable first (a StoreError says why it is not `role`)."""
    for _ in range(_ATTEMPTS):
        prepare_root(layout, role)
        name = "%s-%s" % (kind, random_hex(8))
        lock = layout.staging / (name + LOCK_SUFFIX)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # a writer that failed in a new root removed the staging dir meanwhile
        except OSError as exc:
            raise StoreError(unusable_dir(layout.root, role, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner looks at it
            if _is_current(fd, lock):
                os.mkdir(layout.staging / name, 0o700)
                return StagingSet(layout.staging / name, fd)
        except BaseException:
            remove_tree(lock)
            os.close(fd)
            raise
        os.close(fd)  # a cleaner took it for a dead writer's and removed it: draw another
    raise StoreError("could not create a staging dir in %s" % layout.staging)


@contextmanager
def writing(layout: StagingRoot, kind: str, clean: Callable[[], object], role: str = "a data root") -> Iterator[StagingSet]:
    """A set of our own for the block (create_set), `clean` (removing what dead writers left)
    run once it is ours; the set removed when the block ends, whatever the outcome."""
    owned = create_set(layout, kind, role)
    try:
        clean()
        yield owned
    finally:
        owned.remove()


def prepare_root(layout: StagingRoot, role: str = "a data root") -> None:
    """The root and its staging dir, made if missing; a StoreError if the root is unusable as `role`."""
    try:
        layout.prepare_staging()
    except OSError as exc:
        raise StoreError(unusable_dir(layout.root, role, exc)) from None


def abandoned(staging: Path) -> Iterator[Path]:
    """Each entry of `staging` no live writer owns. A set's dir and lock file are yielded while
    this holds the lock (the caller may remove them: no writer can take them back)."""
    for name in _listdir(staging):
        path = staging / name
        if name.endswith(LOCK_SUFFIX):
            with _claimed(path) as gone:
                if gone:
                    set_dir = path.with_name(name[: -len(LOCK_SUFFIX)])
                    if os.path.lexists(set_dir):
                        yield set_dir
                    yield path
        elif not os.path.lexists(lock_of(path)):  # looked up now: a set's lock is made before its dir
            yield path


@contextmanager
def _claimed(lock: Path) -> Iterator[bool]:
    """Whether `lock` is a lock file nobody holds; if so, held for the block."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        fd = -1  # its owner finished, or another cleaner removed it (or it is not ours to look at)
    try:
        yield fd >= 0 and _try_lock(fd) and _is_current(fd, lock)
    finally:
        if fd >= 0:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take the flock unless someone holds it (a live writer)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_current(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (not removed or replaced meanwhile)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def temp_files(layout: DataRoot) -> Iterator[Path]:
    """Temp files of atomic writes under image/overlay2 (outside the layer dirs) and of the root's
    engine-id. Only a writer holding the root lock makes them: seen under that lock, each is an
    interrupted write's."""
    for name in _listdir(layout.root):
        if name.startswith(TEMP_PREFIX + layout.engine_id.name):
            yield layout.root / name
    for dirpath, dirnames, filenames in os.walk(layout.image):
        dirnames.sort()
        if Path(dirpath) == layout.layerdb:
            dirnames[:] = [d for d in dirnames if d not in ("sha256", "tmp")]
        for name in sorted(filenames):
            if name.startswith(TEMP_PREFIX):
                yield Path(dirpath) / name


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
