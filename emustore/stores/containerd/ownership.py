"""Is a containerd running on this root? containerd holds an exclusive flock on meta.db (and its
snapshotter's metadata.db) for as long as it runs, as bbolt does: a lock we cannot share is one,
once other emustore writers (which take those flocks only under our writer lock) are ruled out."""

from __future__ import annotations

import os
from pathlib import Path

from emustore.bbolt.reader import lock_file, open_file
from emustore.errors import StoreError
from emustore.stores.docker.ownership import RootInUse
from emustore.stores.containerd.layout import ContainerdRoot


def check_not_owned(layout: ContainerdRoot, force: bool = False) -> None:
    """Raise RootInUse when a process (a running containerd) holds a database of the root, unless `force`
    (the databases stay locked all the same: bbolt's flock is never overridden)."""
    if force:
        return
    for path in (layout.meta_db, layout.metadata_db):
        if _locked(path):
            raise RootInUse(
                "%s is in use by a running containerd (%s is locked); stop it first" % (layout.root, path)
            )


def _locked(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        fd = open_file(path, os.O_RDONLY)
    except StoreError:
        return False
    try:
        lock_file(fd, path, exclusive=False)
    except StoreError:
        return True
    finally:
        os.close(fd)
    return False
