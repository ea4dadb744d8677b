"""explain's layer files: reading a diff dir (lstat only, bounded) and stacking layers as overlayfs does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from emustore.explain.changes import ADDED, DELETED, MODIFIED, OPAQUE, UNCHANGED, analyse
from emustore.explain.tree import Budget, read_layer


def make(diff: Path, files: dict[str, bytes | str | None]) -> Path:
    """A diff dir: bytes -> file, str -> symlink target, None -> whiteout; "dir/" -> dir; "dir/!" -> opaque dir."""
    diff.mkdir(parents=True)
    for name, content in files.items():
        path = diff / name.rstrip("/!")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/") or name.endswith("/!"):
            path.mkdir(exist_ok=True)
            if name.endswith("!"):
                os.setxattr(path, "user.overlay.opaque", b"y")
        elif content is None:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        elif isinstance(content, str):
            os.symlink(content, path)
        else:
            path.write_bytes(content)
    return diff


def test_statuses_hides_wasted_and_merged_view(tmp_path: Path) -> None:
    base = make(tmp_path / "0", {"a/file": b"12345", "a/sub/x": b"xx", "b": b"bbb", "c/y": b"y", "d/": None, "link": "/etc"})
    middle = make(tmp_path / "1", {"a/file": b"1234567", "a/sub": None, "b/z": b"z", "c/!": None, "c/new": b"n", "d/": None})
    top = make(tmp_path / "2", {"a/more": b"m", "gone": None})
    os.chmod(middle / "d", 0o700)
    files = analyse([read_layer(diff, Budget()) for diff in (base, middle, top)])

    status = {c.entry.path: c.status for c in files.layers[1].changes}
    assert status == {"/a": UNCHANGED, "/a/file": MODIFIED, "/a/sub": DELETED, "/b": MODIFIED, "/b/z": ADDED,
                      "/c": OPAQUE, "/c/new": ADDED, "/d": MODIFIED}
    hides = {c.entry.path: [(h.layer, h.entry.path) for h in c.hides] for c in files.layers[1].changes if c.hides}
    assert hides == {"/a/file": [(0, "/a/file")], "/a/sub": [(0, "/a/sub"), (0, "/a/sub/x")], "/b": [(0, "/b")], "/c": [(0, "/c/y")]}
    assert files.layers[1].wasted == 5 + 2 + 3 + 1
    assert files.layers[2].wasted == 0 and [c.status for c in files.layers[2].changes] == [UNCHANGED, ADDED, DELETED]
    assert {c.entry.path: c.hidden_by for c in files.layers[0].changes if c.hidden_by is not None} == {
        "/a/file": 1, "/a/sub": 1, "/a/sub/x": 1, "/b": 1, "/c/y": 1}
    assert [(m.entry.path, m.layer) for m in files.merged] == [
        ("/a", 2), ("/a/file", 1), ("/a/more", 2), ("/b", 1), ("/b/z", 1), ("/c", 1), ("/c/new", 1), ("/d", 1), ("/link", 0)]
    assert [m.entry.path for m in files.merged_under("/c/")] == ["/c", "/c/new"]
    assert files.merged[-1].entry.target == "/etc" and files.merged[-1].entry.kind == "symlink"
    assert files.layers[1].changes[5].entry.opaque == "user.overlay.opaque"


def test_reading_never_follows_links_and_stays_in_budget(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside", {"secret/a": b"s", "secret/b": b"s"})
    diff = make(tmp_path / "diff", {"in/f": b"f", "out": str(outside), "up": "../outside"})
    layer = read_layer(diff, Budget())
    assert [(e.path, e.kind) for e in layer.entries] == [("/in", "dir"), ("/in/f", "file"), ("/out", "symlink"), ("/up", "symlink")]
    assert read_layer(tmp_path / "diff" / "out", Budget()).entries == [], "a diff dir that is a link is not read"
    budget = Budget(entries=2)
    small = read_layer(diff, budget)
    assert [e.path for e in small.entries] == ["/in", "/out"], "names are taken in order"
    assert small.skipped == budget.skipped == 2  # /up, then /in/f


def test_undecodable_and_control_names_are_shown_escaped(tmp_path: Path) -> None:
    diff = tmp_path / "diff"
    diff.mkdir()
    (diff / os.fsdecode(b"caf\xe9")).write_bytes(b"")
    (diff / "new\nline").write_bytes(b"")
    assert sorted(e.path for e in read_layer(diff, Budget()).entries) == ["/caf\\xe9", "/new\\nline"]
