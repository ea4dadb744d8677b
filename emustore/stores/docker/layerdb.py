"""image/overlay2/layerdb, its one owner: layers (one directory per chain id, published by renaming a
staged write-set, removed by renaming it `-removing` first) and the container mounts beside them.

Every reader asks this module: `load` reads an entry by dockerd's loader rules, `FILES` is the format
of each file as dockerd writes it (what fsck holds an entry to), `mounts` reads layerdb/mounts/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emustore.digest import HEX64, SHA256_DIGEST, Digest, hex_of, is_digest, is_hex64
from emustore.fsutil import remove_tree, write_all_synced
from emustore.stores.docker.layout import DataRoot

REMOVING_SUFFIX = "-removing"
FILES = (  # name, content as dockerd writes it, that content in words, required
    ("diff", SHA256_DIGEST, "sha256:<64 hex>", True),
    ("size", re.compile(r"[0-9]+"), "decimal digits", True),
    ("cache-id", HEX64, "64 hex digits", True),
    ("parent", SHA256_DIGEST, "sha256:<64 hex>", False),
)
_LOADED_SIZE = re.compile(r"[+-]?[0-9]+")  # what dockerd's loader accepts (strconv.ParseInt)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n]) (format doc §5.1)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            text = (chains[-1] + " " + diff_id).encode("ascii")
            chains.append(Digest.of_bytes(text))
    return chains


@dataclass(frozen=True)
class LayerRecord:
    """The files of one layerdb entry."""

    chain_id: str
    diff_id: str
    size: int
    cache_id: str
    parent: str | None


@dataclass(frozen=True)
class Mount:
    """layerdb/mounts/<container id>/: each file's text (stripped), None where it cannot be read."""

    container_id: str
    path: Path
    mount_id: str | None
    init_id: str | None
    parent: str | None

    @property
    def valid(self) -> bool:
        """Its ids name dirs under overlay2/ (nothing else may pass) and its parent is a chain id or empty."""
        return (
            is_hex64(self.mount_id)
            and self.init_id == "%s-init" % self.mount_id
            and self.parent is not None
            and (not self.parent or is_digest(self.parent))
        )


class LayerDB:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def path(self, chain_id: str) -> Path:
        return self.layout.layers / hex_of(chain_id)

    def chain_ids(self) -> list[Digest]:
        """The chain ids of the entries present (dirs named by 64 hex digits), loadable or not."""
        try:
            names = sorted(os.listdir(self.layout.layers))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [Digest.from_hex(name) for name in names if is_hex64(name)]

    def texts(self, chain_id: str) -> dict[str, str | None]:
        """Each file of the entry (FILES) as it is, None where absent: for showing it, not using it."""
        texts: dict[str, str | None] = {}
        for name, _, _, _ in FILES:
            try:
                texts[name] = (self.path(chain_id) / name).read_bytes().decode("utf-8", "replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                texts[name] = None
        return texts

    def load(self, chain_id: str) -> LayerRecord | None:
        """The entry as dockerd's loader reads it at start, or None when it would skip it: required
        files readable, `diff` and `parent` digests, `size` an integer, `cache-id` non-empty,
        `descriptor.json` (if any) JSON. Its parent chain is the caller's to check."""
        path = self.path(chain_id)
        try:
            diff = (path / "diff").read_text().strip()
            size_text = (path / "size").read_text()
            cache_id = (path / "cache-id").read_text().strip()
            parent = _text(path / "parent") if (path / "parent").exists() else None
            descriptor = path / "descriptor.json"
            if descriptor.exists():
                json.loads(descriptor.read_bytes())
        except (OSError, ValueError):
            return None
        if not is_digest(diff) or not _LOADED_SIZE.fullmatch(size_text) or not cache_id:
            return None
        if parent is not None and not is_digest(parent):
            return None
        return LayerRecord(chain_id, diff, int(size_text), cache_id, parent)

    def exists(self, chain_id: str) -> bool:
        """A layer dockerd would load: its required files are present."""
        path = self.path(chain_id)
        return all((path / name).is_file() for name in ("diff", "size", "cache-id"))

    def read(self, chain_id: str) -> LayerRecord:
        path = self.path(chain_id)
        parent_file = path / "parent"
        return LayerRecord(
            chain_id=chain_id,
            diff_id=(path / "diff").read_text().strip(),
            size=int((path / "size").read_text()),
            cache_id=(path / "cache-id").read_text().strip(),
            parent=parent_file.read_text().strip() if parent_file.exists() else None,
        )

    def write_set(self, dest: Path, record: LayerRecord, tar_split: Path) -> None:
        """Make `dest` the layer's directory-to-be: its files written and synced, its tar-split
        moved in. `publish` then renames it into place (no file is written under the lock)."""
        os.mkdir(dest, 0o700)
        files = {"diff": record.diff_id, "size": str(record.size), "cache-id": record.cache_id}
        if record.parent:
            files["parent"] = record.parent
        write_all_synced([(dest / name, content.encode("ascii"), 0o644) for name, content in files.items()])
        os.rename(tar_split, dest / "tar-split.json.gz")
        os.chmod(dest / "tar-split.json.gz", 0o644)

    def publish(self, write_set: Path, chain_id: str) -> None:
        """Publish a layer atomically: its write-set renamed to layerdb/sha256/<chain-hex>."""
        os.rename(write_set, self.path(chain_id))

    def remove(self, chain_id: str, unique: str, remove_data: Callable[[], None]) -> None:
        """Remove a layer as dockerd does: its dir renamed to `<hex>-<unique>-removing` (from then on
        it does not load), then its data removed (`remove_data`), then the renamed dir."""
        removing = self.layout.layers / ("%s-%s%s" % (hex_of(chain_id), unique, REMOVING_SUFFIX))
        os.rename(self.path(chain_id), removing)
        remove_data()
        remove_tree(removing)

    def mount_path(self, container_id: str) -> Path:
        return self.layout.layerdb / "mounts" / container_id

    def read_mount(self, container_id: str) -> Mount:
        path = self.mount_path(container_id)
        return Mount(container_id, path, _text(path / "mount-id"), _text(path / "init-id"), _text(path / "parent"))

    def mounts(self) -> list[Mount]:
        """Every entry of layerdb/mounts/, by container id."""
        try:
            names = sorted(os.listdir(self.layout.layerdb / "mounts"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [self.read_mount(name) for name in names]


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
