"""What fsck reports: problems with their path, and the small readers every check shares."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_READ = 64 << 20  # no metadata file of a data root comes near this


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    leftover: bool = False  # remains of an interrupted write; `repair` removes it

    def __str__(self) -> str:
        return "%s: %s" % (self.path, self.message)


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)

    def report(self, path: Path, message: str, leftover: bool = False) -> None:
        self.problems.append(Problem(path, message, leftover))

    def read(self, path: Path, required: bool = True) -> str | None:
        """A small file's text; a missing (when `required`), unreadable, linked, special or
        oversized one is reported. Never follows a symlink nor reads more than MAX_READ."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            if required:
                self.report(path, "missing")
            return None
        except OSError as exc:
            self.report(path, "a symlink" if exc.errno == errno.ELOOP else "unreadable: %s" % exc.strerror)
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.report(path, "not a regular file")
                return None
            with os.fdopen(fd, "rb", closefd=False) as stream:
                data = stream.read(MAX_READ + 1)
        except OSError as exc:
            self.report(path, "unreadable: %s" % exc.strerror)
            return None
        finally:
            os.close(fd)
        if len(data) > MAX_READ:
            self.report(path, "larger than %d bytes" % MAX_READ)
            return None
        return data.decode("utf-8", "replace")

    def modes(self, base: Path, expected: dict[str, int]) -> None:
        """Report each present entry (`.` is `base` itself) whose permission bits differ from dockerd's."""
        for name, mode in expected.items():
            path = base if name == "." else base / name
            try:
                actual = os.lstat(path).st_mode & 0o7777
            except FileNotFoundError:
                continue
            if actual != mode:
                self.report(path, "mode %04o, dockerd writes %04o" % (actual, mode))


def listdir(path: Path) -> list[str]:
    """Sorted entries of a directory; none when it is missing."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def is_real_dir(path: Path) -> bool:
    """A directory itself, not a symlink to one."""
    return stat.S_ISDIR(_lstat_mode(path))


def is_regular(path: Path) -> bool:
    """A regular file itself, not a symlink to one."""
    return stat.S_ISREG(_lstat_mode(path))
