"""What a pull tells the user, in `docker pull`'s words."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

from emustore.digest import short_id
from emustore.reference import Reference


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


def human_size(size: float) -> str:
    """docker's sizes: decimal units, 4 significant digits ("1.982MB", "512B")."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return "%.4g%s" % (size, units[i])


def progress_text(current: int, total: int | None, bar: bool) -> str:
    """docker's progress column: `[====>   ]  1.2MB/3.4MB` (the bar only on wide terminals)."""
    if not total or total <= 0:
        return "%8s" % human_size(current)
    filled = min(TerminalReporter.BAR_WIDTH, int(current / total * 100) // 2)
    box = "[%s>%s] " % ("=" * filled, " " * (TerminalReporter.BAR_WIDTH - filled)) if bar else ""
    return "%s%8s/%s" % (box, human_size(current), human_size(total))


class TerminalReporter(LineReporter):
    """docker pull's terminal output: one line per layer, redrawn in place, with a progress bar.

    Layers are extracted while they download, so the bar covers both; once every byte is in,
    the layer shows "Verifying Checksum" until its digests are checked ("Download complete").
    """

    BAR_WIDTH = 50
    MIN_BAR_COLUMNS = 110  # narrower terminals get the numbers only, as with docker
    REDRAW_EVERY = 0.1  # seconds between redraws of a layer's download progress, as docker's

    def __init__(self, out: TextIO | None = None, columns: int | None = None) -> None:
        super().__init__(out)
        self.columns = columns or shutil.get_terminal_size().columns
        self._order: list[str] = []  # layer ids, one screen line each, in order of appearance
        self._shown: dict[str, str] = {}
        self._received: dict[str, int] = {}
        self._drawn_at: dict[str, float] = {}  # when each layer's download line was last redrawn

    def layer(self, digest: str, status: str) -> None:
        with self._lock:
            self._draw(short_id(digest), status)

    def progress(self, digest: str, nbytes: int, total: int | None) -> None:
        with self._lock:
            layer = short_id(digest)
            if not self._received:  # the first bytes: every layer not yet started is queued
                for other, text in self._shown.items():
                    if text == "Pulling fs layer" and other != layer:
                        self._draw(other, "Waiting")
            current = self._received.get(layer, 0) + nbytes
            self._received[layer] = current
            if total and current >= total:
                self._draw(layer, "Verifying Checksum")
                return
            now = time.monotonic()
            if now - self._drawn_at.get(layer, -self.REDRAW_EVERY) >= self.REDRAW_EVERY:
                self._drawn_at[layer] = now
                bar = self.columns >= self.MIN_BAR_COLUMNS
                self._draw(layer, "Downloading " + progress_text(current, total, bar))

    def _draw(self, layer: str, status: str) -> None:
        """Rewrite the layer's line (or add it below the others); unchanged lines are not sent."""
        if self._shown.get(layer) == status:
            return
        text = ("%s: %s" % (layer, status))[: max(self.columns - 1, 20)]
        if layer not in self._shown:
            self._order.append(layer)
            self.out.write(text + "\n")
        else:
            up = len(self._order) - self._order.index(layer)
            self.out.write("\x1b[%dA\r\x1b[2K%s\x1b[%dB\r" % (up, text, up))
        self.out.flush()
        self._shown[layer] = status


class QuietReporter(Reporter):
    """`-q`: only the full reference at the end."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def done(self, ref: Reference, manifest_digest: str, downloaded: bool) -> None:
        self.out.write(ref.full_string() + "\n")
