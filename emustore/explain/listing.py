"""One line per file entry, the same in the text output and in the page's no-script listing."""

from __future__ import annotations

import os
import stat

from emustore.explain.changes import Change, Hidden, MergedEntry
from emustore.explain.tree import FileEntry


def size_field(entry: FileEntry) -> str:
    """Bytes, or major,minor for a device."""
    if stat.S_ISCHR(entry.mode) or stat.S_ISBLK(entry.mode):
        return "%d,%d" % (os.major(entry.rdev), os.minor(entry.rdev))
    return str(entry.size)


def describe(entry: FileEntry) -> str:
    """`-rw-r--r--  0:0  1234  /path -> target` (aligned columns)."""
    tail = " -> %s" % entry.target if entry.target is not None else ""
    if entry.whiteout:
        tail = "  (whiteout)"
    elif entry.opaque:
        tail = "  (opaque: %s=y)" % entry.opaque
    owner = "%d:%d" % (entry.uid, entry.gid)
    return "%s %-11s %10s  %s%s" % (stat.filemode(entry.mode), owner, size_field(entry), entry.path, tail)


def change_line(change: Change) -> str:
    """A layer's entry with its status."""
    line = "%-9s %s" % (change.status, describe(change.entry))
    if change.hidden_by is not None:
        line += "  [hidden by layer %d]" % change.hidden_by
    return line


def hidden_line(hidden: Hidden) -> str:
    return "layer %d: %s" % (hidden.layer, describe(hidden.entry))


def merged_line(merged: MergedEntry) -> str:
    return "layer %-3d %s" % (merged.layer, describe(merged.entry))
