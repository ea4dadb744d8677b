"""Compare two containerd roots logically: both bbolt files dumped and normalised, and the files.

Times (createdat/updatedat) become "T"; the snapshotter's random-looking numbers become tokens
from chain ids: meta.db's key numbers `<ns>/<n>/<chain>` → `<ns>/N/<chain>`, metadata.db's ids
(values, parents keys, snapshots/<id> dirs) → the chain id of the snapshot holding them. Only the
image store is compared: content, meta.db, the overlayfs snapshotter (not the dirs a daemon makes
at start, nor emustore's own dir there).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emustore.bbolt.reader import BucketDump, open_db
from emustore.stores.containerd.codec import read_uvarint
from emustore.stores.containerd.layout import ContainerdRoot
from tests.support.treecompare import Node, _kind, _sha256, _walk, _xattrs, diff_nodes

TIME_KEYS = (b"createdat", b"updatedat")
KEY_NUMBER = re.compile(r"^([^/]+)/\d+/(.+)$")
COMPARED = ("io.containerd.content.v1.content", "io.containerd.metadata.v1.bolt", "io.containerd.snapshotter.v1.overlayfs")


def _flat(bucket: BucketDump, prefix: str, out: dict[str, object]) -> None:
    out[prefix + "/"] = ("sequence", bucket["sequence"])
    for key, value in bucket["values"].items():
        out[prefix + "/" + key.decode(errors="backslashreplace")] = value
    for key, child in bucket["buckets"].items():
        _flat(child, prefix + "/" + key.decode(errors="backslashreplace"), out)


def dump(path: Path) -> BucketDump:
    """The database as plain data, without bbolt's flock (a containerd may be running on it)."""
    with open_db(path, lock=False) as db:
        return db.root.dump({0, 1})


def snapshot_chains(root: Path) -> dict[int, str]:
    """metadata.db id → the chain id in its key."""
    path = ContainerdRoot(root).metadata_db
    if not path.exists():
        return {}
    snaps = dump(path)["buckets"][b"v1"]["buckets"].get(b"snapshots")
    found = {}
    for key, record in (snaps["buckets"] if snaps else {}).items():
        found[read_uvarint(record["values"][b"id"])[0]] = key.decode().rsplit("/", 1)[-1]
    return found


def normalised_dbs(root: Path) -> dict[str, object]:
    """Both databases as {path: value}, times and ids mapped."""
    layout = ContainerdRoot(root)
    chains = snapshot_chains(root)
    out: dict[str, object] = {}
    for name, path in (("meta", layout.meta_db), ("snap", layout.metadata_db)):
        flat: dict[str, object] = {}
        if path.exists():
            tree = dump(path)
            if name == "snap" and b"parents" in tree["buckets"].get(b"v1", {"buckets": {}})["buckets"]:
                parents = tree["buckets"][b"v1"]["buckets"][b"parents"]
                parents["values"] = {_parent_link(key, chains): value for key, value in parents["values"].items()}
            _flat(tree, name, flat)
        for key, value in flat.items():
            leaf = key.rsplit("/", 1)[-1].encode()
            key = _map_key(key, chains)
            if leaf in TIME_KEYS:
                value = "T"
            elif isinstance(value, bytes) and (leaf in (b"name", b"parent") or name == "snap" and "/parents/" in key):
                value = KEY_NUMBER.sub(r"\1/N/\2", value.decode())
            elif name == "snap" and leaf == b"id" and isinstance(value, bytes):
                value = chains.get(read_uvarint(value)[0], "?")
            out[key] = value
    return out


def _parent_link(raw: bytes, chains: dict[int, str]) -> bytes:
    """A parents key (uvarint parent id, 0, uvarint child id) as "<parent chain> > <child chain>"."""
    parent, end = read_uvarint(raw)
    child = read_uvarint(raw, end + 1)[0]
    return ("%s > %s" % (chains.get(parent, "?"), chains.get(child, "?"))).encode()


def _map_key(key: str, chains: dict[int, str]) -> str:
    parts = key.split("/")
    if parts[:3] == ["snap", "v1", "snapshots"] and len(parts) >= 6:
        return "/".join(parts[:3] + [parts[3], "N"] + parts[5:])
    return key


def normalised_files(root: Path) -> dict[str, Node]:
    """Every path of the image store: type, mode, owner, content digest (bbolt files: only that
    they exist), device numbers, xattrs; snapshots/<id> → snapshots/<chain id>."""
    chains = snapshot_chains(root)
    nodes: dict[str, Node] = {}
    for top in COMPARED:
        base = root / top
        if not base.exists():
            continue
        for rel, path in [(top, base), *_walk(base, top)]:
            parts = rel.split("/")
            if parts[:2] == ["io.containerd.snapshotter.v1.overlayfs", "emustore"]:
                continue
            if len(parts) >= 3 and parts[1] == "snapshots" and parts[2].isdigit():
                parts[2] = chains.get(int(parts[2]), "orphan-" + parts[2])
            info = os.lstat(path)
            kind = _kind(info.st_mode)
            content: object = None
            if kind == "f" and not rel.endswith(".db"):
                content = (info.st_size, _sha256(path))
            elif kind == "l":
                content = os.readlink(path)
            elif kind in "cb":
                content = (os.major(info.st_rdev), os.minor(info.st_rdev))
            in_fs = len(parts) > 4 and parts[3] == "fs"
            whiteout = kind == "c" and info.st_rdev == 0  # made by the extraction: its time is not the layer's
            mtime = info.st_mtime_ns if in_fs and kind != "d" and not whiteout else None
            nodes["/".join(parts)] = Node(kind, info.st_mode & 0o7777, info.st_uid, info.st_gid, content, mtime, _xattrs(path), None)
    return nodes


def diff_roots(a: Path, b: Path) -> list[str]:
    """Differences between two containerd roots (databases, then files); [] when equal."""
    dbs_a, dbs_b = normalised_dbs(a), normalised_dbs(b)
    lines = []
    for key in sorted(dbs_a.keys() | dbs_b.keys()):
        if dbs_a.get(key, "<missing>") != dbs_b.get(key, "<missing>"):
            lines.append("%s: %r != %r" % (key, dbs_a.get(key, "<missing>"), dbs_b.get(key, "<missing>")))
    return lines + diff_nodes(normalised_files(a), normalised_files(b))
