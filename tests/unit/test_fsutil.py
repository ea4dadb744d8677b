"""Atomic writes: several files synced together, renamed in order, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from emustore.fsutil import atomic_write_all, remove_tree


def test_all_files_are_written_with_their_modes_and_no_temp_remains(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"old")
    atomic_write_all([(tmp_path / "a", b"first", 0o644), (tmp_path / "b", b"second", 0o600)])
    assert (tmp_path / "a").read_bytes() == b"first" and (tmp_path / "b").read_bytes() == b"second"
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "b").st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_a_failed_write_publishes_nothing_and_removes_its_temps(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        atomic_write_all([(tmp_path / "a", b"new", 0o644), (tmp_path / "missing" / "b", b"x", 0o644)])
    assert (tmp_path / "a").read_bytes() == b"old"  # not renamed: the second file failed first
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_the_temp_names_follow_dockerd_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    rename = os.rename
    monkeypatch.setattr(os, "rename", lambda src, dst: (seen.append(Path(src).name), rename(src, dst)))
    atomic_write_all([(tmp_path / "repositories.json", b"{}", 0o600)])
    atomic_write_all([(tmp_path / "x", b"{}", 0o600)], temp_prefix="tmp-")
    assert seen[0].startswith(".tmp-repositories.json") and seen[0][len(".tmp-repositories.json") :].isdigit()
    assert seen[1].startswith("tmp-")


def test_remove_tree_deeper_than_the_recursion_limit(scratch: Path) -> None:
    top = deepest = scratch / "top"
    top.mkdir()
    for _ in range(1500):  # os.makedirs itself recurses
        deepest = deepest / "d"
        deepest.mkdir()
    (deepest / "f").write_bytes(b"x")
    remove_tree(top)
    assert not top.exists()


def test_remove_tree_never_enters_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    os.symlink(outside, top / "sub" / "link")
    os.symlink(outside, tmp_path / "toplink")
    remove_tree(top)
    remove_tree(tmp_path / "toplink")
    remove_tree(tmp_path / "missing")
    assert not top.exists() and not os.path.lexists(tmp_path / "toplink")
    assert (outside / "keep").read_bytes() == b"keep"
