"""Atomic file writes and the data root's lock."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import filelock

from emustore.errors import StoreError


def atomic_write(path: Path, data: bytes, mode: int, temp_prefix: str | None = None) -> None:
    """Write `data` to a temp file beside `path`, fsync, chmod `mode`, rename over `path`.

    The temp name follows dockerd's (`.tmp-<name><random>`) unless `temp_prefix` is given.
    """
    prefix = temp_prefix if temp_prefix is not None else ".tmp-" + path.name
    tmp = path.with_name(prefix + str(secrets.randbelow(10**9)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_file(path: Path, data: bytes, mode: int, sync: bool = False) -> None:
    """Create (or truncate) a file with exactly `mode`, optionally fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, mode: int) -> None:
    """mkdir with an exact mode if missing (parents must exist)."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)


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
