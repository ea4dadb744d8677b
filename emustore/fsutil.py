"""Atomic file writes, tree removal and the data root's lock."""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from emustore.errors import StoreError

TEMP_PREFIX = ".tmp-"  # dockerd's temp files (ioutils.AtomicWriteFile) and emustore's


def atomic_write(path: Path, data: bytes, mode: int, temp_prefix: str | None = None) -> None:
    """Write `data` to a temp file beside `path`, fsync, chmod `mode`, rename over `path`.

    The temp name follows dockerd's (`.tmp-<name><random>`) unless `temp_prefix` is given.
    """
    atomic_write_all([(path, data, mode)], temp_prefix)


def atomic_write_all(files: list[tuple[Path, bytes, int]], temp_prefix: str | None = None) -> None:
    """atomic_write for each (path, data, mode), renamed in order once all are synced
    (write_all_synced: one journal commit for all instead of one each)."""
    temps = []
    for path, _, _ in files:
        prefix = temp_prefix if temp_prefix is not None else TEMP_PREFIX + path.name
        temps.append(path.with_name(prefix + str(secrets.randbelow(10**9))))
    write_all_synced([(tmp, data, mode) for tmp, (_, data, mode) in zip(temps, files)], exclusive=True)
    renamed = 0
    try:
        for tmp, (path, _, _) in zip(temps, files):
            os.rename(tmp, path)
            renamed += 1
    except BaseException:
        _unlink_all(temps[renamed:])
        raise


def write_all_synced(files: list[tuple[Path, bytes, int]], exclusive: bool = False) -> None:
    """Create (`exclusive`: new only) each (path, data, mode), then fsync them all side by side:
    the file system commits them together. On failure the files made are removed."""
    made: list[Path] = []
    fds: list[int] = []
    try:
        for path, data, mode in files:
            fds.append(_write_unsynced(path, data, mode, exclusive))
            made.append(path)
        _fsync_all(fds)
    except BaseException:
        _unlink_all(made)
        raise
    finally:
        for fd in fds:
            os.close(fd)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _write_unsynced(path: Path, data: bytes, mode: int, exclusive: bool = False) -> int:
    """Create (or truncate) `path` with exactly `mode` and `data`; the open fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        if exclusive:
            os.unlink(path)
        raise
    return fd


def _fsync_all(fds: list[int]) -> None:
    """fsync every fd, side by side (each call waits on the disk without the GIL)."""
    if len(fds) <= 1:
        for fd in fds:
            os.fsync(fd)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(fds), 8), thread_name_prefix="fsync") as pool:
        for _ in pool.map(os.fsync, fds):
            pass


def write_file(path: Path, data: bytes, mode: int, sync: bool = False) -> None:
    """Create (or truncate) a file with exactly `mode`, optionally fsynced."""
    fd = _write_unsynced(path, data, mode)
    try:
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: str | bytes | os.PathLike[str], ignore_errors: bool = False) -> None:
    """shutil.rmtree without its recursion (a layer may hold directories thousands deep) and
    without following any symlink: links are removed, never entered. A missing path is fine."""

    def attempt(action: Callable[[bytes], None], target: bytes) -> None:
        try:
            action(target)
        except FileNotFoundError:
            pass
        except OSError:
            if not ignore_errors:
                raise

    top = os.fsencode(path)
    try:
        is_dir = stat.S_ISDIR(os.lstat(top).st_mode)
    except FileNotFoundError:
        return
    if not is_dir:
        attempt(os.unlink, top)
        return
    pending: list[tuple[bytes, bool]] = [(top, False)]  # (dir, its entries already queued)
    while pending:
        current, emptied = pending.pop()
        if emptied:
            attempt(os.rmdir, current)
            continue
        pending.append((current, True))
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        except OSError:
            if not ignore_errors:
                raise
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, False))
            else:
                attempt(os.unlink, entry.path)


def copy_tree(source: Path, target: Path) -> None:
    """Copy the tree `source` to the new `target` with everything kept (modes, owners, times,
    xattrs, device nodes, hard links within it): a layer's extracted dir, copied for a repeated blob."""
    import subprocess  # only for a blob repeated in a manifest: a faster start

    subprocess.run(["cp", "-a", "--preserve=all", "--", str(source), str(target)], check=True, capture_output=True)


def ensure_dir(path: Path, mode: int) -> None:
    """mkdir with an exact mode if missing (parents must exist)."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)


def unusable_dir(path: Path, role: str, exc: OSError) -> str:
    """One line saying why `path` cannot serve as `role` ("a data root"), given the error met."""
    if path.is_symlink() and not path.exists():
        why = "it is a symlink to %s, which does not exist" % os.readlink(path)
    elif path.exists() and not path.is_dir():
        why = "it is not a directory"
    elif not path.exists() and not path.parent.is_dir():
        why = "its parent %s %s" % (path.parent, "is not a directory" if path.parent.exists() else "does not exist")
    else:
        why = "%s: %s" % (exc.filename or path, exc.strerror or exc)
    return "cannot use %s as %s: %s" % (path, role, why)


def random_hex(nbytes: int) -> str:
    return secrets.token_hex(nbytes)


@contextmanager
def root_lock(lock_path: Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold the data root's exclusive lock (one writer of the indexes at a time)."""
    lock = filelock.FileLock(str(lock_path), timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise StoreError(
            "timed out after %.0fs waiting for the lock %s held by another emustore process"
            % (timeout, lock_path)
        ) from None
    try:
        yield
    finally:
        lock.release()
