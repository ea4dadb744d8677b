"""Headless Debian chromium: screenshots and the rendered DOM of local pages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180, check=True, stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, out: Path, width: int, height: int, fragment: str = "") -> bytes:
    """PNG bytes of `page` (at `#fragment`, if any) rendered in a width×height window."""
    _chromium(f"--screenshot={out}", f"--window-size={width},{height}", _url(page, fragment))
    return out.read_bytes()


def dump_dom(page: Path, fragment: str = "") -> str:
    """The DOM after rendering (and after the page's scripts ran), serialised."""
    return _chromium("--dump-dom", _url(page, fragment)).stdout


def _url(page: Path, fragment: str) -> str:
    return page.absolute().as_uri() + ("#" + fragment if fragment else "")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Texts(HTMLParser):
    """Collects the text of every element whose `attr` is `value` (nested text included)."""

    def __init__(self, attr: str, value: str, classes: bool) -> None:
        super().__init__()
        self.attr, self.value, self.classes = attr, value, classes
        self.open: list[list[str]] = []  # per matching element still open: its text parts
        self.depths: list[int] = []
        self.depth = 0
        self.found: list[str] = []

    def _matches(self, attrs: list[tuple[str, str | None]]) -> bool:
        for name, value in attrs:
            if name == self.attr and value is not None:
                return self.value in value.split() if self.classes else value == self.value
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.depth += 1
        if self._matches(attrs):
            self.open.append([])
            self.depths.append(self.depth)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.depths and self.depths[-1] == self.depth:
            self.depths.pop()
            text = "".join(self.open.pop())
            self.found.append(text)
            for outer in self.open:
                outer.append(text)
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].append(data)


def element_texts(dom: str, attr: str, value: str) -> list[str]:
    """The text of each element of `dom` whose `attr` equals `value` ("class": has that class)."""
    parser = _Texts(attr, value, attr == "class")
    parser.feed(dom)
    return parser.found
