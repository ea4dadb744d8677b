"""layerdb checks: file formats, chain ids, parents, and the container mounts on top."""

from __future__ import annotations

from pathlib import Path

from emustore.digest import Digest, is_hex64
from emustore.fsck.findings import Findings, is_regular, listdir
from emustore.stores.docker.layerdb import FILES, REMOVING_SUFFIX, LayerRecord, chain_ids
from emustore.stores.docker.store import DockerStore


def check_layerdb(store: DockerStore, found: Findings) -> dict[str, LayerRecord]:
    """Every layerdb entry whose files parse, by chain id; problems for the rest."""
    layers: dict[str, LayerRecord] = {}
    for entry in listdir(store.layout.layers):
        path = store.layout.layers / entry
        if entry.endswith(REMOVING_SUFFIX):
            found.report(path, "leftover of an interrupted layer removal", leftover=True)
        elif not is_hex64(entry) or not path.is_dir():
            found.report(path, "not a layer directory (name must be 64 hex digits)")
        else:
            layer = _layer_files(path, found)
            if layer is not None:
                layers[layer.chain_id] = layer
    for layer in layers.values():
        _chain(store, layer, layers, found)
    return layers


def _layer_files(path: Path, found: Findings) -> LayerRecord | None:
    values: dict[str, str] = {}
    for name, pattern, shape, required in FILES:
        text = found.read(path / name, required)
        if text is None:
            continue
        if not pattern.fullmatch(text):
            found.report(path / name, "malformed content %r (expected %s, no newline)" % (text[:80], shape))
            continue
        values[name] = text
    if not is_regular(path / "tar-split.json.gz"):
        found.report(path / "tar-split.json.gz", "missing or not a file; docker save and push of this layer fail")
    if not all(name in values for name in ("diff", "size", "cache-id")):
        return None
    return LayerRecord(Digest.from_hex(path.name), values["diff"], int(values["size"]), values["cache-id"], values.get("parent"))


def _chain(store: DockerStore, layer: LayerRecord, layers: dict[str, LayerRecord], found: Findings) -> None:
    path = store.layers.path(layer.chain_id)
    if layer.parent is None:
        expected = chain_ids([layer.diff_id])[0]
    else:
        if layer.parent not in layers:
            found.report(path / "parent", "names %s, which is not a loadable layer" % layer.parent)
        expected = chain_ids([layer.parent, layer.diff_id])[1]
    if expected != layer.chain_id:
        found.report(path, 'chain id does not recompute: sha256(parent + " " + diff) is %s' % expected)


def loadable(chain_id: str, layers: dict[str, LayerRecord]) -> bool:
    """dockerd loads a layer only if its files parse and, recursively, its parent loads."""
    seen: set[str] = set()
    layer = layers.get(chain_id)
    while layer is not None and layer.parent is not None and layer.chain_id not in seen:
        seen.add(layer.chain_id)
        layer = layers.get(layer.parent)
    return layer is not None and layer.parent is None


def named_cache_ids(store: DockerStore) -> set[str]:
    """The overlay2 dirs named by layerdb entries, loadable or not: never orphans."""
    named: set[str] = set()
    for chain_id in store.layers.chain_ids():
        try:
            named.add((store.layers.path(chain_id) / "cache-id").read_text().strip())
        except OSError:
            pass
    return named - {""}


def check_mounts(store: DockerStore, layers: dict[str, LayerRecord], found: Findings) -> set[str]:
    """Container layers (layerdb/mounts/<id>/); returns the overlay2 dirs they use."""
    used: set[str] = set()
    mounts = store.layout.layerdb / "mounts"
    for entry in listdir(mounts):
        for name in ("mount-id", "init-id"):
            text = found.read(mounts / entry / name)
            if text:
                used.add(text.strip())
        parent = found.read(mounts / entry / "parent", required=False)
        if parent is not None and parent.strip() not in layers:
            found.report(mounts / entry / "parent", "names %s, which is not a loadable layer" % parent.strip())
    return used
