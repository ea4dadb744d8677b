"""Compare two Docker data roots the way §11 of docs/docker-store-format.md says.

Random ids are replaced by tokens derived from chain ids (`C:<chain>` for cache ids,
`K:<chain>` for link ids, `M<n>:<parent chain>` for containers); every remaining path is
recorded with type, mode, owner, content, xattrs, hard-link group and, where §11 point 3 allows,
its mtime.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

IGNORED_TOP = frozenset(
    {"containerd", "buildkit", "network", "volumes", "plugins", "runtimes", "swarm", "trust", "containers"}
)
IMAGE = "image/overlay2"
LAYERDB = f"{IMAGE}/layerdb"
ENGINE_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CONTENTS_IGNORED = ("tmp", f"{LAYERDB}/tmp")  # the dirs are compared, not what is inside
GZIP_HEADER = 10  # ID1 ID2 CM FLG MTIME(4) XFL OS: a name or comment would set FLG


class Node(NamedTuple):
    """One path of a normalised tree. `content` is bytes (metadata files, exact), a
    (size, sha256) pair (files in diff/), a link target, or (major, minor) for devices."""

    kind: str  # d f l c b p s
    mode: int  # 12 permission bits
    uid: int
    gid: int
    content: Any
    mtime_ns: int | None  # only for diff/ entries that came from a tar header
    xattrs: tuple[tuple[str, bytes], ...]
    hardlinks: tuple[str, ...] | None  # every path sharing the inode inside the same diff/


@dataclass
class IdMap:
    """Random id → token, read from one tree."""

    cache: dict[str, str]  # overlay2 dir name -> token
    link: dict[str, str]  # overlay2/l name -> token
    mount: dict[str, str]  # layerdb/mounts/<container id> -> token


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return ""


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def read_id_map(root: Path) -> IdMap:
    cache: dict[str, str] = {}
    for layer in sorted((root / LAYERDB / "sha256").glob("*")):
        cache_id = _read(layer / "cache-id")
        if cache_id:
            cache[cache_id] = f"C:{layer.name}"
    mount: dict[str, str] = {}
    per_parent: dict[str, int] = {}
    for container in sorted((root / LAYERDB / "mounts").glob("*"), key=_creation_order):
        parent = _hex(_read(container / "parent"))
        per_parent[parent] = per_parent.get(parent, 0) + 1
        token = f"M{per_parent[parent]}:{parent}"
        mount[container.name] = token
        for id_file, suffix in (("mount-id", ""), ("init-id", "-init")):
            cache_id = _read(container / id_file)
            if cache_id:
                cache[cache_id] = f"R:{token}{suffix}"
    link: dict[str, str] = {}
    for entry in sorted((root / "overlay2" / "l").glob("*")):
        if entry.is_symlink():
            parts = os.readlink(entry).split("/")  # ../<cache-id>/diff
            if len(parts) == 3 and parts[1] in cache:
                link[entry.name] = "K:" + cache[parts[1]].split(":", 1)[1]
    return IdMap(cache, link, mount)


def _creation_order(container: Path) -> tuple[int, str]:
    """Containers get tokens in creation order (mtime of their mount dir), ids break ties."""
    return container.lstat().st_mtime_ns, container.name


def _map_digest_text(text: str, blob_map: dict[str, str]) -> str:
    for old, new in blob_map.items():
        text = text.replace(_hex(old), _hex(new))
    return text


def _map_names(value: str, name_map: dict[str, str]) -> str:
    for old, new in name_map.items():
        if value == old or value.startswith((old + ":", old + "@")):
            return new + value[len(old):]
    return value


def _rewrite_json(data: bytes, rel: str, blob_map: dict[str, str], name_map: dict[str, str]) -> bytes:
    """Apply digest/name maps to repositories.json or a v2metadata file; unchanged → same bytes."""
    if rel.endswith("repositories.json"):
        doc = json.loads(data)
        doc["Repositories"] = {
            _map_names(repo, name_map): {
                _map_digest_text(_map_names(ref, name_map), blob_map): image for ref, image in refs.items()
            }
            for repo, refs in doc["Repositories"].items()
        }
        new = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    else:
        entries = json.loads(data)
        for entry in entries:
            entry["Digest"] = blob_map.get(entry["Digest"], entry["Digest"])
            entry["SourceRepository"] = _map_names(entry["SourceRepository"], name_map)
        new = json.dumps(entries, separators=(",", ":")).encode()
    return data if json.loads(new) == json.loads(data) else new


class _Walker:
    """Builds the normalised {path: Node} dict of one data root."""

    def __init__(self, root: Path, blob_map: dict[str, str], name_map: dict[str, str]) -> None:
        self.root = root
        self.ids = read_id_map(root)
        self.blob_map = blob_map
        self.name_map = name_map
        self.headers = self._header_paths()
        self.nodes: dict[str, Node] = {}
        self.inodes: dict[tuple[str, int, int], list[str]] = {}

    def _header_paths(self) -> dict[str, set[str]]:
        """Per overlay2 token, the cleaned paths that had a tar header of their own."""
        result: dict[str, set[str]] = {}
        for layer in (self.root / LAYERDB / "sha256").glob("*"):
            cache_id = _read(layer / "cache-id")
            if cache_id in self.ids.cache:
                result[self.ids.cache[cache_id]] = tar_split_paths(layer / "tar-split.json.gz")
        return result

    def normalise(self, rel: str) -> str:
        """Replace random ids in a root-relative path by tokens."""
        parts = rel.split("/")
        if parts[0] == "overlay2" and len(parts) > 1:
            if parts[1] == "l" and len(parts) > 2:
                parts[2] = self.ids.link.get(parts[2], "?" + parts[2])
            elif parts[1] != "l":
                parts[1] = self.ids.cache.get(parts[1], "?" + parts[1])
        elif rel.startswith(f"{LAYERDB}/mounts/") and len(parts) > 4:
            parts[4] = self.ids.mount.get(parts[4], "?" + parts[4])
        elif rel.startswith(f"{IMAGE}/distribution/diffid-by-digest/sha256/") and len(parts) == 6:
            parts[5] = _map_digest_text(parts[5], self.blob_map)
        return "/".join(parts)

    def content(self, path: Path, rel: str) -> bytes:
        """Exact bytes of a metadata file, with random ids and mapped digests/names replaced.

        Malformed content is kept as it is (or marked `?`) so that it shows up as a difference."""
        data = path.read_bytes()
        name = path.name
        text = data.decode(errors="surrogateescape")
        if name == "tar-split.json.gz":
            # the deflate bytes depend on the compressor (format doc §6.1): the 10 header bytes
            # are compared as a first line, then the JSON lines
            try:
                return b"gzip header %s\n%b" % (data[:GZIP_HEADER].hex().encode(), gzip.decompress(data))
            except (OSError, EOFError):
                return b"?undecompressable " + data
        if name in ("cache-id", "mount-id", "init-id"):
            return self.ids.cache.get(text.strip(), "?" + text).encode(errors="surrogateescape")
        if name == "link" and rel.startswith("overlay2/"):
            return self.ids.link.get(text, "?" + text).encode(errors="surrogateescape")
        if name == "lower" and rel.startswith("overlay2/"):
            elements = [
                "l/" + self.ids.link.get(e[2:], "?" + e[2:]) if e.startswith("l/") else "?" + e
                for e in text.split(":")
            ]
            return ":".join(elements).encode(errors="surrogateescape")
        if name == "lastUpdated" and "/imagedb/metadata/" in rel:
            return b"<present>"
        if rel == "engine-id":  # a random UUID (dockerd 26 and later): its shape is compared
            return b"<uuid>" if ENGINE_ID.fullmatch(data) else data
        if (self.blob_map or self.name_map) and (
            rel == f"{IMAGE}/repositories.json" or "/v2metadata-by-diffid/" in rel
        ):
            try:
                return _rewrite_json(data, rel, self.blob_map, self.name_map)
            except (ValueError, KeyError, TypeError, AttributeError):
                return data
        return data

    def walk(self) -> dict[str, Node]:
        self.add("", self.root, None)
        for rel, path in _walk(self.root, ""):
            parts = rel.split("/")
            if parts[0] in IGNORED_TOP:
                continue
            if any(rel.startswith(prefix + "/") for prefix in CONTENTS_IGNORED):
                continue
            if parts[0] == "overlay2" and len(parts) > 3 and parts[2] == "work":
                continue
            self.add(rel, path, self._diff_location(parts))
        self._group_hardlinks()
        return self.nodes

    @staticmethod
    def _diff_location(parts: list[str]) -> tuple[str, str] | None:
        """(overlay2 dir name, path inside diff/) for entries below a diff/ root."""
        if parts[0] == "overlay2" and len(parts) > 3 and parts[1] != "l" and parts[2] == "diff":
            return parts[1], "/".join(parts[3:])
        return None

    def add(self, rel: str, path: Path, in_diff: tuple[str, str] | None) -> None:
        st = path.lstat()
        kind = _kind(st.st_mode)
        content: Any = None
        if kind == "f":
            if in_diff:
                content = (st.st_size, _sha256(path))
            else:
                content = self.content(path, rel)
        elif kind == "l":
            target = os.readlink(path)
            if rel.startswith("overlay2/l/"):
                parts = target.split("/")
                if len(parts) == 3:
                    parts[1] = self.ids.cache.get(parts[1], "?" + parts[1])
                target = "/".join(parts)
            content = target
        elif kind in "cb":
            content = (os.major(st.st_rdev), os.minor(st.st_rdev))
        mtime = None
        if in_diff:
            token = self.ids.cache.get(in_diff[0], "")
            if in_diff[1] in self.headers.get(token, ()):
                mtime = st.st_mtime_ns
        self.nodes[self.normalise(rel)] = Node(
            kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content, mtime, _xattrs(path), None
        )
        if in_diff and kind != "d" and st.st_nlink > 1:
            self.inodes.setdefault((in_diff[0], st.st_dev, st.st_ino), []).append(self.normalise(rel))

    def _group_hardlinks(self) -> None:
        for paths in self.inodes.values():
            if len(paths) > 1:
                group = tuple(sorted(paths))
                for p in paths:
                    self.nodes[p] = self.nodes[p]._replace(hardlinks=group)


def _walk(root: Path, rel: str) -> Iterator[tuple[str, Path]]:
    """Every entry below `root` with its relative name; iterative (trees may be thousands deep)."""
    pending = [(root, rel)]
    while pending:
        directory, base = pending.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                child_rel = f"{base}/{entry.name}" if base else entry.name
                yield child_rel, Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), child_rel))


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "d"),
        (stat.S_ISREG, "f"),
        (stat.S_ISLNK, "l"),
        (stat.S_ISCHR, "c"),
        (stat.S_ISBLK, "b"),
        (stat.S_ISFIFO, "p"),
    ):
        if test(mode):
            return kind
    return "s"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((name, os.getxattr(path, name, follow_symlinks=False)) for name in names))


def clean_member_name(name: str) -> str | None:
    """The diff/-relative path a tar member name lands on (None for the root entry).

    Whiteout members produce no entry of their own and map to None too."""
    cleaned = posixpath.normpath("/" + name).lstrip("/")
    base = cleaned.rsplit("/", 1)[-1]
    if not cleaned or cleaned == "." or base.startswith(".wh."):
        return None
    return cleaned


def tar_split_paths(path: Path) -> set[str]:
    """Cleaned names of the type-1 entries of a tar-split.json.gz (empty if missing)."""
    try:
        entries = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    except (OSError, EOFError, ValueError):
        return set()
    names = set()
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != 1:
            continue
        if "name_raw" in entry:  # not UTF-8: walk() sees it surrogate-escaped too
            name = os.fsdecode(base64.b64decode(entry["name_raw"]))
        else:
            name = entry.get("name", "")
        cleaned = clean_member_name(name)
        if cleaned:
            names.add(cleaned)
    return names


def normalized_tree(
    root: Path,
    *,
    blob_map: dict[str, str] | None = None,
    name_map: dict[str, str] | None = None,
) -> dict[str, Node]:
    """{normalised path: Node} for one data root.

    `blob_map` substitutes registry digests (layer blobs and the manifest/index digest, full
    `sha256:` strings) and `name_map` repository names (`host/name`), in diffid-by-digest file
    names, v2metadata entries and repositories.json; use them to compare a pull of a gzip twin
    with a pull of the original (see imagefactory.twin_maps)."""
    return _Walker(Path(root), blob_map or {}, name_map or {}).walk()


def _describe(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _content_diff(a: Any, b: Any) -> str:
    if isinstance(a, bytes) and isinstance(b, bytes):
        la, lb = a.split(b"\n"), b.split(b"\n")
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                return f"content line {i + 1}: {_describe(x)} != {_describe(y)}"
        return f"content: {len(la)} lines != {len(lb)} lines"
    return f"content {_describe(a)} != {_describe(b)}"


def diff_nodes(a: dict[str, Node], b: dict[str, Node]) -> list[str]:
    lines = []
    for path in sorted(a.keys() | b.keys()):
        if path not in b:
            lines.append(f"only in A: {path} ({a[path].kind})")
        elif path not in a:
            lines.append(f"only in B: {path} ({b[path].kind})")
        else:
            for name in Node._fields:
                x, y = getattr(a[path], name), getattr(b[path], name)
                if x == y:
                    continue
                if name == "content":
                    lines.append(f"{path or '.'}: {_content_diff(x, y)}")
                elif name == "mode":
                    lines.append(f"{path or '.'}: mode {x:04o} != {y:04o}")
                else:
                    lines.append(f"{path or '.'}: {name} {_describe(x)} != {_describe(y)}")
    return lines


def diff_trees(a_root: Path, b_root: Path, **opts: Any) -> list[str]:
    """Human-readable differences between two data roots; [] when equal.

    `opts` (blob_map, name_map) are applied to both trees."""
    return diff_nodes(normalized_tree(a_root, **opts), normalized_tree(b_root, **opts))
