"""overlay2 checks: orphan dirs, link files and l/ symlinks, lower chains, and each layer's
content recomputed (size from diff/, diff id by reassembling the tar from tar-split + diff/)."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

from emustore.digest import Hasher
from emustore.errors import EmustoreError
from emustore.layers.unprivileged import RECORD_NAME, Unwritable
from emustore.fsck.findings import Findings, is_real_dir, is_regular, listdir
from emustore.stores.docker.layerdb import LayerRecord
from emustore.layers.assemble import assemble
from emustore.layers.size import layer_size
from emustore.stores.docker.store import DockerStore

LINK_ID = re.compile(r"[A-Z2-7]{26}")
# modes dockerd 20.10 gives each piece (format doc §1, §5.2, §8; checklist #5, #10)
LAYERDB_MODES = {".": 0o700, "diff": 0o644, "size": 0o644, "cache-id": 0o644, "parent": 0o644, "tar-split.json.gz": 0o644}
# (diff/ is 0755 unless the layer itself names its root, "/" or "..", as a directory: dockerd applies that)
OVERLAY2_MODES = {".": 0o710, "link": 0o644, "lower": 0o644, "work": 0o700, "committed": 0o600}


def check_overlay2(store: DockerStore, referenced: set[str], found: Findings) -> None:
    """Orphan dirs; every used dir's link file and l/ symlink; no l/ entry dangling or stray."""
    overlay2 = store.layout.overlay2
    present = {entry for entry in listdir(overlay2) if entry != "l"}
    for entry in sorted(present - referenced):
        found.report(overlay2 / entry, "orphan: no layer or container refers to it", leftover=True)
    for cache_id in sorted(present & referenced):
        _link_file(store, cache_id, found)
    for entry in sorted(present):
        _no_symlinks(overlay2 / entry, found)
    for entry in listdir(store.layout.links):
        link = store.layout.links / entry
        try:
            target = os.readlink(link)
        except OSError:
            found.report(link, "not a symlink")
            continue
        parts = target.split("/")
        if len(parts) != 3 or parts[0] != ".." or parts[2] != "diff":
            found.report(link, "points at %s, not ../<cache-id>/diff" % target)
        elif parts[1] not in present:
            found.report(link, "dangling: %s does not exist" % (overlay2 / parts[1]), leftover=True)
        elif parts[1] not in referenced:
            found.report(link, "link of the orphan %s" % (overlay2 / parts[1]), leftover=True)


def _no_symlinks(layer_dir: Path, found: Findings) -> None:
    """overlay2/<id> and what it holds (diff, link, lower, work, …) are never symlinks: one
    would lead the engine, and every reader of the root, outside it. Only l/ holds links."""
    if os.path.islink(layer_dir):
        found.report(layer_dir, "a symlink (to %s): only l/ holds links" % os.readlink(layer_dir))
        return
    for name in listdir(layer_dir):
        if os.path.islink(layer_dir / name):
            found.report(layer_dir / name, "a symlink (to %s): only l/ holds links" % os.readlink(layer_dir / name))


def _link_file(store: DockerStore, cache_id: str, found: Findings) -> None:
    path = store.overlay2.layer_dir(cache_id)
    if not os.path.lexists(path / "diff"):
        found.report(path / "diff", "missing")
    elif not is_real_dir(path / "diff"):
        found.report(path / "diff", "not a directory")
    link_id = found.read(path / "link")
    if link_id is None:
        return
    if not LINK_ID.fullmatch(link_id):
        found.report(path / "link", "malformed content %r (expected 26 characters A-Z2-7, no newline)" % link_id[:80])
        return
    link = store.layout.links / link_id
    try:
        target = os.readlink(link)
    except OSError:
        found.report(link, "missing; inspect and run of images using %s fail" % path)
        return
    if target != "../%s/diff" % cache_id:
        found.report(link, "points at %s, expected ../%s/diff" % (target, cache_id))


def check_layer_content(store: DockerStore, layer: LayerRecord, layers: dict[str, LayerRecord], found: Findings) -> None:
    """Modes, lower/work/committed, then size and diff id recomputed from the diff dir."""
    layer_dir = store.overlay2.layer_dir(layer.cache_id)
    meta = store.layers.path(layer.chain_id)
    if not is_real_dir(layer_dir):  # a symlink is reported by check_overlay2, never followed
        if not os.path.lexists(layer_dir):
            found.report(layer_dir, "missing (cache-id of %s)" % meta)
        return
    found.modes(meta, LAYERDB_MODES)
    found.modes(layer_dir, OVERLAY2_MODES)
    _lower(store, layer, layers.get(layer.parent) if layer.parent else None, found)
    _unwritten(layer_dir / RECORD_NAME, found)
    diff_dir = layer_dir / "diff"
    if not is_real_dir(diff_dir):
        return
    actual_size = layer_size(str(diff_dir))
    if actual_size != layer.size:
        found.report(meta / "size", "is %d, but %s holds %d bytes" % (layer.size, diff_dir, actual_size))
    tar_split = meta / "tar-split.json.gz"
    if is_regular(tar_split):
        _diff_id(layer, tar_split, diff_dir, found)


def _unwritten(record: Path, found: Findings) -> None:
    """A pull without root recorded what it could not write: the layer differs from the image."""
    text = found.read(record, required=False)
    if text is None:
        return
    try:
        counts = Unwritable.from_json(text).counts()
    except ValueError:
        found.report(record, "unreadable record of a pull without root")
        return
    parts = ", ".join("%d %s" % (n, kind) for kind, n in counts.items() if n)
    found.report(record, "pulled without root: %s not written as the image says" % (parts or "nothing"))


def _lower(store: DockerStore, layer: LayerRecord, parent: LayerRecord | None, found: Findings) -> None:
    """`lower` = l/<parent link>:<parent's lower>; `work/` in a child; `committed` in its parent."""
    layer_dir = store.overlay2.layer_dir(layer.cache_id)
    lower = store.overlay2.lower_of(layer.cache_id)
    if layer.parent is None and lower is not None:
        found.report(layer_dir / "lower", "present in a base layer")
    if parent is None:
        return
    try:
        parent_link = store.overlay2.link_of(parent.cache_id)
    except OSError:
        parent_link = None  # reported with the parent's link file
    if parent_link is not None:
        parent_lower = store.overlay2.lower_of(parent.cache_id)
        expected = "l/" + parent_link + (":" + parent_lower if parent_lower else "")
        if lower != expected:
            found.report(layer_dir / "lower", "is %r, expected %r" % (lower, expected))
    if not (layer_dir / "work").is_dir():
        found.report(layer_dir / "work", "missing in a layer with a parent")
    committed = store.overlay2.layer_dir(parent.cache_id) / "committed"
    if not committed.is_file():
        found.report(committed, "missing in a layer that has a child")


def _diff_id(layer: LayerRecord, tar_split: Path, diff_dir: Path, found: Findings) -> None:
    """Reassemble the layer's tar as save/push would and hash it (the files of a non-base layer
    are all in its own diff/, so this equals reading through the merged overlay view)."""
    hasher = Hasher()
    try:
        for chunk in assemble(tar_split, diff_dir):
            hasher.update(chunk)
    except EmustoreError as exc:
        found.report(diff_dir, "cannot be reassembled: %s" % exc)
        return
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        found.report(tar_split, "unreadable: %s" % exc)
        return
    actual = hasher.digest()
    if actual != layer.diff_id:
        found.report(diff_dir, "reassembles to %s, but diff says %s" % (actual, layer.diff_id))
