"""Leftovers of interrupted writes: staged downloads, layerdb write-sets, temp files."""

from __future__ import annotations

import os
from pathlib import Path

from emustore.fsck.findings import TEMP_PREFIX, Findings, listdir
from emustore.stores.docker.store import DockerStore


def check_leftovers(store: DockerStore, found: Findings) -> None:
    layout = store.layout
    for entry in listdir(layout.staging):
        found.report(layout.staging / entry, "leftover of an interrupted pull", leftover=True)
    for entry in listdir(layout.layerdb_tmp):
        found.report(layout.layerdb_tmp / entry, "leftover of an interrupted layer write", leftover=True)
    for dirpath, dirnames, filenames in os.walk(layout.image):
        dirnames.sort()
        if Path(dirpath) == layout.layerdb:
            dirnames[:] = [d for d in dirnames if d not in ("sha256", "tmp")]
        for name in sorted(filenames):
            if name.startswith(TEMP_PREFIX):
                found.report(Path(dirpath) / name, "temp file of an interrupted atomic write", leftover=True)
