"""Waiting out ext4's "recently deleted inode" window before timing file creation.

An ext4 file system without a journal skips every inode freed in the last 60 seconds (360 while
its inode table block is dirty) when it allocates a new one, checking each in turn. Creating
30,000 files just after deleting 30,000 then costs seconds of kernel time (measured: `tar -x`
of the smallfiles layer took 13.7 s instead of 1.2 s). The benchmark therefore deletes nothing
between timed runs and, on such a file system, syncs and waits out the window once before them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

RECENTLY_DELETED_SECONDS = 60  # ext4's RECENTCY_MIN; a sync makes the inode table blocks clean
MARGIN_SECONDS = 2


def _mount_of(path: Path) -> tuple[str, str] | None:
    """(file system type, source device) of the mount holding `path`, from /proc/self/mountinfo."""
    target = os.stat(path).st_dev
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        major, minor = (int(x) for x in fields[2].split(":"))
        if os.makedev(major, minor) == target:
            rest = fields[fields.index("-") + 1 :]
            return rest[0], rest[1]
    return None


def skips_recently_deleted(path: Path) -> bool:
    """True when `path` lives on ext4 without a journal (no /proc/fs/jbd2 entry for its device)."""
    mount = _mount_of(path)
    if mount is None or mount[0] != "ext4":
        return False
    device = os.path.basename(mount[1])
    jbd2 = Path("/proc/fs/jbd2")
    return not (jbd2.is_dir() and any(entry.name.startswith(device + "-") for entry in jbd2.iterdir()))


def settle(path: Path, log: Callable[[str], None]) -> None:
    """Sync, and on a journal-less ext4 wait until no inode counts as recently deleted."""
    os.sync()
    if skips_recently_deleted(path):
        log(f"ext4 without a journal under {path}: waiting {RECENTLY_DELETED_SECONDS}s for freed inodes to age")
        time.sleep(RECENTLY_DELETED_SECONDS + MARGIN_SECONDS)
        os.sync()
