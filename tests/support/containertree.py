"""Compare the containers/ part of two data roots (treecompare ignores it), random ids normalised.

Containers are matched by the tokens treecompare gives their layerdb mounts (`M<n>:<parent>`,
creation order per image); in config.v2.json the id, hostname, Created time and (optionally)
generated names are replaced and Config.Env is sorted (the docker CLI passes -e values in an
order that varies from run to run); the rest is compared byte for byte, field order included.
The xattrs the kernel's overlayfs writes when dockerd mounts a container's layers (MOUNT_XATTRS:
a random uuid, lower-inode file handles, the impure mark) are not compared on those layers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from emustore.gojson import go_json
from tests.support.treecompare import Node, _walk, diff_nodes, normalized_tree, read_id_map

MOUNT_XATTRS = frozenset({"trusted.overlay.uuid", "trusted.overlay.origin", "trusted.overlay.impure"})
_CREATED = re.compile(rb'"Created":"[^"]*"')
_NAME = re.compile(rb'"Name":"/[^"]*"')


def normalise_config(data: bytes, container_id: str, names: bool) -> bytes:
    """config.v2.json/hostconfig.json bytes without the id, hostname, creation time (and name)."""
    data = data.replace(container_id.encode(), b"<ID>").replace(container_id[:12].encode(), b"<HOSTNAME>")
    data = _CREATED.sub(b'"Created":"<TIME>"', data)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("Config"), dict) and isinstance(doc["Config"].get("Env"), list):
        doc["Config"]["Env"] = sorted(doc["Config"]["Env"])
        data = go_json(doc).encode() + data[len(data.rstrip()):]
    return _NAME.sub(b'"Name":"<NAME>"', data) if names else data


def container_nodes(root: Path, names: bool = False) -> dict[str, Node]:
    """{containers/<token>/...: Node} for every container of a root."""
    root = Path(root)
    tokens = read_id_map(root).mount
    nodes: dict[str, Node] = {}
    base = root / "containers"
    if not base.is_dir():
        return nodes
    for rel, path in _walk(base, ""):
        parts = rel.split("/")
        container_id = parts[0]
        parts[0] = tokens.get(container_id, "?" + container_id)
        st = path.lstat()
        content: Any = None
        if path.is_file() and not path.is_symlink():
            content = normalise_config(path.read_bytes(), container_id, names)
        kind = "d" if path.is_dir() and not path.is_symlink() else ("f" if content is not None else "?")
        nodes["containers/" + "/".join(parts)] = Node(kind, st.st_mode & 0o7777, st.st_uid, st.st_gid, content, None, (), None)
    return nodes


def diff_roots_with_containers(a_root: Path, b_root: Path, names: bool = False, **opts: Any) -> list[str]:
    """treecompare's differences plus those of containers/ (see `normalise_config`)."""
    trees = [_without_mount_xattrs(normalized_tree(root, **opts)) for root in (a_root, b_root)]
    return diff_nodes(*trees) + diff_nodes(container_nodes(a_root, names), container_nodes(b_root, names))


def _without_mount_xattrs(nodes: dict[str, Node]) -> dict[str, Node]:
    for path, node in nodes.items():
        if path.startswith("overlay2/R:"):
            nodes[path] = node._replace(xattrs=tuple(x for x in node.xattrs if x[0] not in MOUNT_XATTRS))
    return nodes


