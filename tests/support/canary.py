"""Hostile-path tests: a canary dir to aim at, a layer aiming at it, and the witness that nothing
outside the allowed dirs changed (a snapshot of a tree, before and after)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.support.tarlayer import LayerBuilder

Snapshot = dict[str, tuple[int, int, int, int, int, str]]


def snapshot(top: Path, skip: tuple[Path, ...] = ()) -> Snapshot:
    """Every entry under `top` but `skip` (and below): type and mode, owner, size, mtime, and the
    link target or content hash. Entries are lstat-ed before being read."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in [d for d in dirnames] + [f for f in filenames if here / f not in skip]:
            path = here / name
            st = path.lstat()
            if path.is_symlink():
                extra = os.readlink(path)
            elif path.is_file():
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                extra = ""
            found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return found


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """The paths that appeared, went or changed between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def make_canary(path: Path) -> Path:
    """A dir hostile paths aim at: decoy (a file) and sub/inner/f."""
    (path / "sub" / "inner").mkdir(parents=True)
    (path / "decoy").write_text("do not touch\n")
    (path / "sub" / "inner" / "f").write_text("nor this\n")
    return path


def hostile_links_layer(canary: Path) -> LayerBuilder:
    """A layer whose links aim out of a root at <tmp>/root: an absolute host path (`canary`), and
    `../` climbs from the diff dir (root/overlay2/<id>/diff/rel) to <tmp>/canary."""
    return (
        LayerBuilder().dir("data/").dir("data/sub/").file("data/sub/f", b"f\n").symlink("data/link", "/data/sub")
        .symlink("abs", str(canary)).symlink("rel", "../../../../canary").dir("deep/")
        .symlink("deep/rel", "../../../../../canary").symlink("deep/decoy", "../../../../../canary/decoy")
    )
