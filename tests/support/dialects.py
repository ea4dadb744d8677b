"""What Docker 26 and 28 write differently from 20.10 for the same pulls (the "dialects").

An independent statement of the differences (shared docs engines.md §2, plus one these tiers saw
with 28 only: SYMLINK_XATTR_ON_TARGET), as a rewrite of a normalised 20.10 tree (treecompare;
engine-id already normalised to "<uuid>") into what the engine is documented to write. The engine
tiers apply it to emustore's 20.10 tree and compare with emustore's `--engine N` tree: anything
else stays a difference.

Not handled here because treecompare already ignores them: the daemon dirs outside the image store
(engines.md §2 row 6: buildkit/, containerd/, plugins/, trust/). Row 5 (zstd layers) is no
difference of the tree: the tiers pull zstd images with every engine and expect rows 1–3 only.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import re
import tarfile
from collections import Counter
from collections.abc import Iterator

from tests.support.treecompare import LAYERDB, Node, clean_member_name

# engines.md §2 row 1: 20.10 ends a tar-split with an empty raw segment (except in two cases that
# emustore reproduces); 26 and 28 never write it.
FINAL_EMPTY_SEGMENT = "tar_split_final_empty_segment"
# row 2: Go <= 1.21 encoding/json writes \u0008 and \u000c, Go >= 1.22 writes \b and \f
JSON_ESCAPES = "tar_split_go122_json_escapes"
# row 3: a PAX xattr with an empty value is dropped by 20.10, set (empty) by 26 and 28
EMPTY_XATTR = "pax_xattr_empty_value"
# row 4: 26 and 28 write engine-id (0600, a UUID) at the data root when they start
ENGINE_ID = "engine_id"
# Seen by these tiers with 28.5.2 only, not yet in engines.md: a symlink's PAX xattrs are set on
# the file the link points to (20.10 and 26 set none: user.* xattrs cannot be set on symlinks).
SYMLINK_XATTR_ON_TARGET = "symlink_xattrs_on_target"

DIALECTS: dict[str, tuple[str, ...]] = {
    "26": (FINAL_EMPTY_SEGMENT, JSON_ESCAPES, EMPTY_XATTR, ENGINE_ID),
    "28": (FINAL_EMPTY_SEGMENT, JSON_ESCAPES, EMPTY_XATTR, ENGINE_ID, SYMLINK_XATTR_ON_TARGET),
}

TAR_SPLIT = "tar-split.json.gz"
EMPTY_SEGMENT = re.compile(rb'\{"type":2,"payload":"","position":\d+\}')
OLD_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u00(08|0c)")
NEW_ESCAPE = {b"08": b"\\b", b"0c": b"\\f"}
ENGINE_ID_FILE = "engine-id"
XATTR_PREFIX = "SCHILY.xattr."


def expect_dialect(emustore: dict[str, Node], engine: dict[str, Node], version: str) -> Counter[str]:
    """Rewrite both normalised trees in place so that exactly engine `version`'s documented
    differences vanish; return how many paths each difference (a DIALECTS name) touched."""
    seen: Counter[str] = Counter()
    _take_engine_id(engine, seen)
    for rel, node in list(emustore.items()):
        if rel.startswith(f"{LAYERDB}/sha256/") and rel.endswith("/" + TAR_SPLIT) and isinstance(node.content, bytes):
            layer = f"overlay2/C:{rel.split('/')[-2]}/diff"
            _apply_headers(emustore, layer, node.content, version, seen)
            emustore[rel] = node._replace(content=_new_tar_split(node.content, seen))
    return seen


def _take_engine_id(engine: dict[str, Node], seen: Counter[str]) -> None:
    node = engine.get(ENGINE_ID_FILE)
    if node is not None and node.kind == "f" and node.mode == 0o600 and node.content == b"<uuid>":
        del engine[ENGINE_ID_FILE]
        seen[ENGINE_ID] += 1


def _new_tar_split(content: bytes, seen: Counter[str]) -> bytes:
    """The tar-split (treecompare's "gzip header" line, then the JSON lines) as 26/28 write it."""
    lines = content.split(b"\n")
    while lines and lines[-1] == b"":
        lines.pop()
    if len(lines) > 1 and EMPTY_SEGMENT.fullmatch(lines[-1]):
        lines.pop()
        seen[FINAL_EMPTY_SEGMENT] += 1
    escaped = [OLD_ESCAPE.sub(lambda m: m.group(1) + NEW_ESCAPE[m.group(2)], line) for line in lines]
    if escaped != lines:
        seen[JSON_ESCAPES] += 1
    return b"\n".join(escaped) + b"\n"


def _apply_headers(tree: dict[str, Node], layer: str, tar_split: bytes, version: str, seen: Counter[str]) -> None:
    """Add the xattrs 26/28 set and 20.10 does not, from the layer's own tar headers."""
    for member in _members(tar_split):
        name = clean_member_name(member.name)
        xattrs = {
            key[len(XATTR_PREFIX):]: value.encode("utf-8", "surrogateescape")
            for key, value in member.pax_headers.items()
            if key.startswith(XATTR_PREFIX)
        }
        if name is None or not xattrs:
            continue
        if member.issym():
            target = _link_target(name, member.linkname)
            if SYMLINK_XATTR_ON_TARGET in DIALECTS[version] and _set_xattrs(tree, f"{layer}/{target}", xattrs):
                seen[SYMLINK_XATTR_ON_TARGET] += 1
            continue
        empty = {key: value for key, value in xattrs.items() if value == b""}
        if empty and _set_xattrs(tree, f"{layer}/{name}", empty):
            seen[EMPTY_XATTR] += 1


def _link_target(name: str, linkname: str) -> str:
    """Where a symlink at `name` points inside its layer (absolute links resolve from the layer root)."""
    joined = linkname if linkname.startswith("/") else posixpath.join(posixpath.dirname(name), linkname)
    return posixpath.normpath("/" + joined).lstrip("/")


def _set_xattrs(tree: dict[str, Node], rel: str, xattrs: dict[str, bytes]) -> bool:
    node = tree.get(rel)
    if node is None or node.kind not in "fd":
        return False
    merged = dict(node.xattrs) | xattrs
    tree[rel] = node._replace(xattrs=tuple(sorted(merged.items())))
    return True


def _members(tar_split: bytes) -> Iterator[tarfile.TarInfo]:
    """The tar headers a tar-split records (file contents read as zeros, never materialised)."""
    stream = tarfile.open(fileobj=io.BufferedReader(_HeaderStream(_chunks(tar_split))), mode="r|")  # type: ignore[arg-type]
    with stream:
        yield from stream


def _chunks(tar_split: bytes) -> Iterator[bytes]:
    for line in tar_split.split(b"\n")[1:]:  # line 1 is treecompare's gzip header line
        if not line:
            continue
        entry = json.loads(line)
        if entry["type"] == 2:
            yield base64.b64decode(entry["payload"] or b"")
        else:
            remaining = entry.get("size") or 0
            while remaining:
                yield bytes(min(remaining, 1 << 16))
                remaining -= min(remaining, 1 << 16)


class _HeaderStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending = chunk
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size

