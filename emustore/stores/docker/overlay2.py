"""overlay2 driver directories: overlay2/<cache-id>/{diff,link,lower,work,committed} and l/ links."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from emustore.fsutil import ensure_dir, remove_tree, write_file
from emustore.stores.docker.layout import DataRoot

LINK_ID_LENGTH = 26


def new_cache_id() -> str:
    """64 random hex digits, drawn again when the first 12 are all decimal (stringid rule)."""
    while True:
        candidate = secrets.token_hex(32)
        if not candidate[:12].isdigit():
            return candidate


def new_link_id() -> str:
    """26 characters of base32 (A–Z, 2–7) from 17 random bytes."""
    return base64.b32encode(secrets.token_bytes(17)).decode("ascii")[:LINK_ID_LENGTH]


class Overlay2:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def layer_dir(self, cache_id: str) -> Path:
        return self.layout.overlay2 / cache_id

    def diff_dir(self, cache_id: str) -> Path:
        return self.layer_dir(cache_id) / "diff"

    def link_of(self, cache_id: str) -> str:
        return (self.layer_dir(cache_id) / "link").read_text().strip()

    def lower_of(self, cache_id: str) -> str | None:
        try:
            return (self.layer_dir(cache_id) / "lower").read_text().strip()
        except FileNotFoundError:
            return None

    def publish(self, staged: Path, cache_id: str, parent_cache_id: str | None) -> None:
        """Turn a staged dir holding `diff/` into overlay2/<cache_id> with its link and lowers.

        The parent gets `committed`, as dockerd marks a layer when one is created on top of it.
        """
        os.chmod(staged, 0o710)
        link_id = new_link_id()
        write_file(staged / "link", link_id.encode("ascii"), 0o644)
        if parent_cache_id is not None:
            ensure_dir(staged / "work", 0o700)
            write_file(self.layer_dir(parent_cache_id) / "committed", b"", 0o600)
            lower = "l/" + self.link_of(parent_cache_id)
            parent_lower = self.lower_of(parent_cache_id)
            if parent_lower:
                lower += ":" + parent_lower
            write_file(staged / "lower", lower.encode("ascii"), 0o644)
        os.rename(staged, self.layer_dir(cache_id))
        os.symlink("../%s/diff" % cache_id, self.layout.links / link_id)

    def remove(self, cache_id: str) -> None:
        """Delete a layer dir and its l/ link (for a registration that did not complete)."""
        layer = self.layer_dir(cache_id)
        try:
            (self.layout.links / self.link_of(cache_id)).unlink()
        except FileNotFoundError:
            pass
        remove_tree(layer, ignore_errors=True)

    def mark_committed(self, cache_id: str) -> None:
        write_file(self.layer_dir(cache_id) / "committed", b"", 0o600)
