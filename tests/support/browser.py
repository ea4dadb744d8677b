"""Headless Debian chromium: screenshots and the rendered DOM of local pages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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


def screenshot(page: Path, out: Path, width: int, height: int) -> bytes:
    """PNG bytes of `page` rendered in a width×height window."""
    _chromium(f"--screenshot={out}", f"--window-size={width},{height}", page.absolute().as_uri())
    return out.read_bytes()


def dump_dom(page: Path) -> str:
    """The DOM after rendering, serialised."""
    return _chromium("--dump-dom", page.absolute().as_uri()).stdout
