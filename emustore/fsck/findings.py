"""What fsck reports: problems with their path, and the small readers every check shares."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

HEX64 = re.compile(r"[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


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
        """A small file's text; a missing (when `required`) or unreadable one is reported."""
        try:
            return path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            if required:
                self.report(path, "missing")
        except OSError as exc:
            self.report(path, "unreadable: %s" % exc.strerror)
        return None

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
