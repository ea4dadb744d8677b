"""Witness that nothing outside the allowed dirs changed: a snapshot of a tree, before and after."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
