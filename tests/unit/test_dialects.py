"""The engine dialects (tests/support/dialects.py) on hand-made normalised trees: each documented
difference is expected exactly where the layer's tar headers say, and nothing else changes."""

from __future__ import annotations

import base64
import io
import json
import tarfile

from tests.support.dialects import (
    EMPTY_XATTR,
    ENGINE_ID,
    FINAL_EMPTY_SEGMENT,
    JSON_ESCAPES,
    SYMLINK_XATTR_ON_TARGET,
    expect_dialect,
)
from tests.support.treecompare import LAYERDB, Node, diff_nodes

CHAIN = "e" * 64
TAR_SPLIT = f"{LAYERDB}/sha256/{CHAIN}/tar-split.json.gz"
DIFF = f"overlay2/C:{CHAIN}/diff"
UUID = b"<uuid>"  # treecompare normalises engine-id to this


def layer_tar() -> bytes:
    """x/ then x/user (user.x), x/empty (an empty and a full xattr), x/sym -> user (user.x), n/ctl\\b\\f."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, xattrs, data in (
            ("x/user", {"user.x": "hello"}, b"u\n"),
            ("x/empty", {"user.empty": "", "user.full": "f"}, b"e\n"),
            ("n/ctl\x08\x0c", {}, b"c\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = {f"SCHILY.xattr.{key}": value for key, value in xattrs.items()}
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("x/sym")
        link.type, link.linkname = tarfile.SYMTYPE, "user"
        link.pax_headers = {"SCHILY.xattr.user.x": "dropped on symlinks"}
        tf.addfile(link)
    return out.getvalue()


def tar_split_lines(tar: bytes, *, go_escapes: bool, final_empty: bool) -> bytes:
    """treecompare's view of a tar-split: the gzip header line, then type 2 (raw) and type 1 (file) entries."""
    lines, position, offset = [], 0, 0
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for member in tf.getmembers():
            lines.append({"type": 2, "payload": base64.b64encode(tar[offset:member.offset_data]).decode(), "position": position})
            lines.append({"type": 1, "name": member.name, "size": member.size, "payload": None, "position": position + 1})
            position, offset = position + 2, member.offset_data + member.size
    lines.append({"type": 2, "payload": base64.b64encode(tar[offset:]).decode(), "position": position})
    if final_empty:
        lines.append({"type": 2, "payload": "", "position": position + 1})
    text = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
    if not go_escapes:
        text = text.replace(b"\\b", b"\\u0008").replace(b"\\f", b"\\u000c")
    return b"gzip header 1f8b08000000000000ff\n" + text


def node(kind: str, content: object = None, xattrs: tuple[tuple[str, bytes], ...] = (), mode: int = 0o644) -> Node:
    return Node(kind, mode, 0, 0, content, None, xattrs, None)


def tree(tar_split: bytes, *, user: bytes, empty: tuple[tuple[str, bytes], ...]) -> dict[str, Node]:
    return {
        TAR_SPLIT: node("f", tar_split),
        f"{DIFF}/x": node("d", mode=0o755),
        f"{DIFF}/x/user": node("f", (2, "u"), (("user.x", user),)),
        f"{DIFF}/x/empty": node("f", (2, "e"), empty),
        f"{DIFF}/x/sym": node("l", "user"),
        f"{DIFF}/n/ctl\x08\x0c": node("f", (2, "c")),
    }


def test_a_2010_tree_becomes_each_engines_tree() -> None:
    tar = layer_tar()
    old = tar_split_lines(tar, go_escapes=False, final_empty=True)
    new = tar_split_lines(tar, go_escapes=True, final_empty=False)
    full = (("user.full", b"f"),)
    for version, user in (("26", b"hello"), ("28", b"dropped on symlinks")):
        emustore = tree(old, user=b"hello", empty=full)
        engine = tree(new, user=user, empty=(("user.empty", b""), *full))
        engine["engine-id"] = node("f", UUID, mode=0o600)
        seen = expect_dialect(emustore, engine, version)
        assert diff_nodes(engine, emustore) == [], version
        expected = {FINAL_EMPTY_SEGMENT: 1, JSON_ESCAPES: 1, EMPTY_XATTR: 1, ENGINE_ID: 1}
        if version == "28":
            expected[SYMLINK_XATTR_ON_TARGET] = 1
        assert dict(seen) == expected


def test_anything_else_stays_a_difference() -> None:
    tar = layer_tar()
    old = tar_split_lines(tar, go_escapes=False, final_empty=False)  # 20.10's exceptions: no final segment
    emustore = tree(old, user=b"hello", empty=(("user.full", b"f"),))
    engine = tree(tar_split_lines(tar, go_escapes=True, final_empty=False), user=b"hello", empty=())
    engine["engine-id"] = node("f", UUID, mode=0o644)  # not 0600: not the documented file
    seen = expect_dialect(emustore, engine, "26")
    assert FINAL_EMPTY_SEGMENT not in seen and ENGINE_ID not in seen
    differences = diff_nodes(engine, emustore)
    assert differences == [
        "only in A: engine-id (f)",
        f"{DIFF}/x/empty: xattrs () != (('user.empty', b''), ('user.full', b'f'))",
    ]
    # 26 does not follow symlinks: 28's xattr on the target is a difference for it
    engine = tree(tar_split_lines(tar, go_escapes=True, final_empty=False), user=b"dropped on symlinks", empty=())
    emustore = tree(old, user=b"hello", empty=())
    expect_dialect(emustore, engine, "26")
    assert any(line.startswith(f"{DIFF}/x/user: xattrs") for line in diff_nodes(engine, emustore))


def test_escaped_backslashes_are_not_go_escapes() -> None:
    tar = layer_tar()
    lines = tar_split_lines(tar, go_escapes=False, final_empty=False).replace(b"\\u0008", b"\\\\u0008")
    emustore = {TAR_SPLIT: node("f", lines)}
    seen = expect_dialect(emustore, {}, "26")
    assert JSON_ESCAPES in seen  # the \u000c still changed
    assert b"\\\\u0008" in emustore[TAR_SPLIT].content
