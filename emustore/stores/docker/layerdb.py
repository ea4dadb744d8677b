"""image/overlay2/layerdb: one directory per chain id, published by renaming a staged write-set."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emustore.digest import Digest, hex_of
from emustore.fsutil import write_all_synced
from emustore.stores.docker.layout import DataRoot


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


class LayerDB:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def path(self, chain_id: str) -> Path:
        return self.layout.layers / hex_of(chain_id)

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
