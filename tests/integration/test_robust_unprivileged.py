"""A pull without root (as nobody, into a root nobody owns) gives a tree usable for reading.

What it cannot write (owners, device nodes, trusted.* xattrs, the trusted opaque marker) is
named in one warning line and recorded per layer in overlay2/<cache-id>/emustore-unwritten.json,
where fsck can find it; `--rootless` marks opaque dirs with user.overlay.opaque instead.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import xattr

from emustore.layers.unprivileged import RECORD_NAME
from tests.support.consistency import check_root
from tests.support.figures import module_figures
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.tiers import require_binary

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(os.geteuid() != 0, reason="switching to nobody needs root"),
]
SETPRIV = "/usr/bin/setpriv"
NOBODY = 65534
FIGURES = {"trials": 0, "unwritten_entries": 0, "files_outside_root": 0}


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> PushedImage:
    features = (
        LayerBuilder()
        .dir("ro/", mode=0o555)
        .file("ro/inside", b"written before ro/ becomes read-only\n")
        .file("owned", b"1000\n", uid=1000, gid=1000)
        .file("setuid", b"#!/bin/sh\n", mode=0o4755)
        .dir("dev/")
        .chardev("dev/null", 1, 3)
        .blockdev("dev/loop9", 7, 9)
        .fifo("dev/fifo")
        .file("x", b"x\n", xattrs={"trusted.x": b"t", "user.x": b"u"})
        .dir("o/")
        .file("o/old", b"old\n")
    )
    deletions = LayerBuilder().dir("o/").opaque("o").file("o/new", b"new\n").whiteout("owned", uid=0, gid=0)
    pushed = busybox_image().layer(features, created_by="features").layer(deletions, created_by="deletions")
    return pushed.push(registry.host, "unpriv/img", "v1")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A dir nobody can reach (pytest's tmp_path is private to root), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="unpriv-", dir="/tmp"))
    os.chmod(path, 0o755)
    (path / "home").mkdir()
    os.chown(path / "home", NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _pull_as_nobody(reference: str, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    require_binary(SETPRIV, "setpriv (util-linux) runs the pull as nobody")
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    command = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
               sys.executable, "-m", "emustore", "pull", reference, "--root", str(root), *extra]
    env = {"PATH": os.environ["PATH"], "HOME": str(root.parent / "home")}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).parents[2])


def _layer_dirs(root: Path) -> dict[str, Path]:
    """diff id → overlay2/<cache-id> of every layer."""
    found = {}
    for entry in (root / "image/overlay2/layerdb/sha256").iterdir():
        cache = (entry / "cache-id").read_text()
        found[(entry / "diff").read_text()] = root / "overlay2" / cache
    return found


def _check_run(result: subprocess.CompletedProcess[str], scratch: Path, root: Path) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("emustore: warning: not running as root"), result.stderr
    assert RECORD_NAME in lines[0]
    FIGURES["trials"] += 1
    FIGURES["files_outside_root"] += len(set(os.listdir(scratch)) - {"home", root.name, "plain", "rootless"})


def test_pull_without_root(image: PushedImage, scratch: Path) -> None:
    root = scratch / "plain"
    result = _pull_as_nobody(image.reference, root)
    _check_run(result, scratch, root)
    layers = _layer_dirs(root)
    features, deletions = layers[image.diff_ids[2]], layers[image.diff_ids[3]]
    diff = features / "diff"
    assert (diff / "ro/inside").read_bytes() == b"written before ro/ becomes read-only\n"
    assert stat.S_IMODE(os.stat(diff / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(diff / "setuid").st_mode) == 0o4755
    assert stat.S_ISFIFO(os.lstat(diff / "dev/fifo").st_mode)
    assert not os.path.lexists(diff / "dev/null")
    assert xattr.getxattr(str(diff / "x"), "user.x") == b"u"
    assert os.stat(diff / "owned").st_uid == NOBODY

    recorded = json.loads((features / RECORD_NAME).read_text())
    assert {d["path"] for d in recorded["devices"]} == {"dev/null", "dev/loop9"}
    assert recorded["xattrs"] == [{"path": "x", "name": "trusted.x"}]
    assert recorded["owners"]["1000:1000"] == 1
    removed = json.loads((deletions / RECORD_NAME).read_text())
    assert removed["opaque"] == ["o"]
    assert stat.S_ISCHR(os.lstat(deletions / "diff/owned").st_mode)  # whiteouts need no privilege (Linux >= 5.8)
    FIGURES["unwritten_entries"] += sum(len(recorded[k]) for k in ("devices", "xattrs", "opaque")) + len(removed["opaque"])

    report = check_root(root)  # structurally sound; fsck reports only the recorded losses
    recorded_layers = [p for p in report.problems if RECORD_NAME + ": pulled without root" in p]
    assert len(recorded_layers) >= 2 and recorded_layers == report.problems, report.problems
    assert report.leftovers == [], report.leftovers


def test_pull_rootless_layout(image: PushedImage, scratch: Path) -> None:
    root = scratch / "rootless"
    result = _pull_as_nobody(image.reference, root, "--rootless")
    _check_run(result, scratch, root)
    deletions = _layer_dirs(root)[image.diff_ids[3]]
    assert xattr.getxattr(str(deletions / "diff/o"), "user.overlay.opaque") == b"y"
    assert json.loads((deletions / RECORD_NAME).read_text())["opaque"] == []


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["files_outside_root"] == 0


_figures = module_figures("pull without root", FIGURES, _check_figures)
