"""What a pull tells the user, in `docker pull`'s words."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from emustore.reference import Reference


def short_id(digest: str) -> str:
    """The 12 hex digits docker shows for a layer."""
    return digest.split(":", 1)[-1][:12]


class Reporter:
    """Receives pull events; the base class ignores them all."""

    def pulling(self, ref: Reference) -> None:
        pass

    def layer(self, digest: str, status: str) -> None:
        pass

    def progress(self, digest: str, nbytes: int, total: int | None) -> None:
        pass

    def done(self, ref: Reference, manifest_digest: str, downloaded: bool) -> None:
        pass


class SilentReporter(Reporter):
    pass


class LineReporter(Reporter):
    """docker pull's plain (non-terminal) output: one line per layer event, then the summary."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def _print(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def pulling(self, ref: Reference) -> None:
        self._print("%s: Pulling from %s" % (ref.digest or ref.tag, ref.path))

    def layer(self, digest: str, status: str) -> None:
        self._print("%s: %s" % (short_id(digest), status))

    def done(self, ref: Reference, manifest_digest: str, downloaded: bool) -> None:
        state = "Downloaded newer image for" if downloaded else "Image is up to date for"
        self._print("Digest: %s" % manifest_digest)
        self._print("Status: %s %s" % (state, ref))
        self._print(ref.full_string())


class QuietReporter(Reporter):
    """`-q`: only the full reference at the end."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def done(self, ref: Reference, manifest_digest: str, downloaded: bool) -> None:
        self.out.write(ref.full_string() + "\n")
