"""`emustore fsck`: check a Docker 20.10 overlay2 data root against the format doc.

Works on any such root, written by emustore or by dockerd. Every problem names its path;
problems marked `leftover` are remains of interrupted writes, the only thing `repair` removes.
"""

from __future__ import annotations

import os
from pathlib import Path

from emustore.errors import StoreError
from emustore.fsck.findings import Findings, Problem
from emustore.fsutil import remove_tree
from emustore.fsck.indexes import check_distribution, check_imagedb, check_repositories
from emustore.fsck.layers import check_layerdb, check_mounts, named_cache_ids
from emustore.fsck.leftovers import check_leftovers
from emustore.fsck.overlay2 import check_layer_content, check_overlay2
from emustore.stores.docker.ownership import check_not_owned
from emustore.stores.docker.store import DockerStore

__all__ = ["Problem", "check", "repair"]


def _store(root: str | os.PathLike[str]) -> DockerStore:
    store = DockerStore(Path(root))
    if not store.layout.root.is_dir():
        raise StoreError("no data root at %s" % store.layout.root)
    return store


def check(root: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the data root, in a stable order."""
    store = _store(root)
    found = Findings()
    layers = check_layerdb(store, found)
    check_overlay2(store, named_cache_ids(store) | check_mounts(store, layers, found), found)
    for layer in layers.values():
        check_layer_content(store, layer, layers, found)
    check_repositories(store, check_imagedb(store, layers, found), found)
    check_distribution(store, found)
    check_leftovers(store, found)
    return found.problems


def repair(root: str | os.PathLike[str], force: bool = False) -> list[Path]:
    """Remove the leftovers of interrupted writes, under the root's lock; return what was removed.

    A root a running dockerd owns is refused unless `force`. Safe while pulls, loads or creates
    run: their staging is theirs as long as they live (stores/docker/staging.py), and what they
    publish or write beside the indexes, they do under the same lock.
    """
    store = _store(root)
    check_not_owned(store.layout.root, force)
    removed: list[Path] = []
    with store.lock():
        for problem in check(root):
            if problem.leftover:
                remove_tree(problem.path)
                removed.append(problem.path)
    return removed
