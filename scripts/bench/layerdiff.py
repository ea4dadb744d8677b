"""A layer as the difference of two root file system tarballs (what `docker build` would commit).

`diff_layer(base, full, out)` writes, in `full`'s order, every entry of `full` that `base` lacks or
holds differently (type, mode, owners, mtime, link target, device numbers, xattrs or content),
each one's parent directories, the targets of the hard links it writes, and a whiteout
(`dir/.wh.name`) for every top-most path of `base` that `full` no longer has. With no `base` it
is the whole tree: a base layer. Names are normalized (no `./` prefix, no root entry); `keep`
filters paths out of both trees (e.g. the contents of /dev).
"""

from __future__ import annotations

import copy
import hashlib
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

Signature = tuple[object, ...]
XATTR = "SCHILY.xattr."
CHUNK = 1 << 20


def normalize(name: str) -> str:
    """`./usr/bin/` -> `usr/bin`; the root itself -> ``."""
    while name.startswith("./"):
        name = name[2:]
    return "" if name == "." else name.strip("/")


def parents(name: str) -> Iterator[str]:
    """`a/b/c` -> `a`, `a/b`."""
    parts = name.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        yield "/".join(parts[:depth])


def _content_digest(archive: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    stream = archive.extractfile(info)
    if stream is None:
        return ""
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def signature(archive: tarfile.TarFile, info: tarfile.TarInfo) -> Signature:
    """Everything that makes two entries of the same name differ on disk."""
    linkname = normalize(info.linkname) if info.islnk() else info.linkname
    xattrs = tuple(sorted((k, v) for k, v in info.pax_headers.items() if k.startswith(XATTR)))
    content = _content_digest(archive, info) if info.isreg() else ""
    return (info.type, info.mode, info.uid, info.gid, int(info.mtime), linkname, info.devmajor, info.devminor, xattrs, content)


def tree(path: Path | None, keep: Callable[[str], bool]) -> dict[str, Signature]:
    """Normalized name -> signature of every kept entry of the tarball at `path` (none: empty)."""
    if path is None:
        return {}
    signatures = {}
    with tarfile.open(path) as archive:
        for info in archive:
            name = normalize(info.name)
            if name and keep(name):
                signatures[name] = signature(archive, info)
    return signatures


def plan(base: dict[str, Signature], full: dict[str, Signature], hardlinks: dict[str, str]) -> tuple[set[str], list[str]]:
    """(names of `full` to write, top-most names of `base` to white out), from the signatures.
    `hardlinks` maps each hard link of `full` to its target."""
    changed = {name for name, sig in full.items() if base.get(name) != sig}
    pending = list(changed)
    while pending:  # a written hard link needs its target in the layer too
        target = hardlinks.get(pending.pop())
        if target is not None and target not in changed:
            changed.add(target)
            pending.append(target)
    for name in list(changed):
        changed.update(p for p in parents(name) if p in full)
    gone = {name for name in base if name not in full}
    whiteouts = sorted(name for name in gone if not any(p in gone for p in parents(name)))
    return changed, whiteouts


def whiteout_name(name: str) -> str:
    parent, _, leaf = name.rpartition("/")
    return f"{parent}/.wh.{leaf}" if parent else f".wh.{leaf}"


def diff_layer(base: Path | None, full: Path, out: Path, keep: Callable[[str], bool] = lambda name: True) -> None:
    """Write the layer taking `base`'s tree to `full`'s into `out` (an uncompressed PAX tar)."""
    full_tree = tree(full, keep)
    with tarfile.open(full) as archive:
        hardlinks = {normalize(i.name): normalize(i.linkname) for i in archive if i.islnk()}
    write, whiteouts = plan(tree(base, keep), full_tree, hardlinks)
    with tarfile.open(full) as archive, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as layer:
        for info in archive:
            name = normalize(info.name)
            if name not in write:
                continue
            entry = copy.copy(info)
            entry.name = name
            entry.pax_headers = {k: v for k, v in info.pax_headers.items() if k.startswith(XATTR)}
            if info.islnk():
                entry.linkname = normalize(info.linkname)
            layer.addfile(entry, archive.extractfile(info) if info.isreg() else None)
        for name in whiteouts:
            marker = tarfile.TarInfo(whiteout_name(name))
            marker.mode = 0o644
            layer.addfile(marker)
