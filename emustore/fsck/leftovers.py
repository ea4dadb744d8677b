"""Leftovers of interrupted writes: abandoned staging, dockerd's layerdb write-sets, temp files."""

from __future__ import annotations

from emustore.fsck.findings import Findings, listdir
from emustore.stores.docker.staging import LOCK_SUFFIX, abandoned, kind_of, temp_files
from emustore.stores.docker.store import DockerStore


def check_leftovers(store: DockerStore, found: Findings) -> None:
    """Staging no live writer owns (a live pull's is not reported), layerdb/tmp entries, temp files."""
    layout = store.layout
    for path in abandoned(layout.staging):
        what = "lock of the staging" if path.name.endswith(LOCK_SUFFIX) else "leftover"
        found.report(path, "%s of an interrupted %s" % (what, kind_of(path.name)), leftover=True)
    for entry in listdir(layout.layerdb_tmp):
        found.report(layout.layerdb_tmp / entry, "leftover of an interrupted layer write", leftover=True)
    for path in temp_files(layout):
        found.report(path, "temp file of an interrupted atomic write", leftover=True)
