"""Hostile layers through a real dockerd 20.10 and through emustore: same verdict, nothing outside.

Each image carries one hostile layer aimed at a canary directory outside every root (names that
clean to the layer root, `..` and absolute names, links out, deep names). dockerd pulls and loads
each one; emustore pulls, loads and `pull --from`s it. Both must accept or refuse alike, the canary
must stay untouched, emustore's refusals are one line, its roots stay fsck-clean, and where both
accept, emustore's trees equal dockerd's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.fsck import check
from tests.support.dockerd import Dockerd
from tests.support.figures import record
from tests.support.imagebuild import ImageBuilder
from tests.support.registry import RegistryServer
from tests.support.tarlayer import LayerBuilder
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


def _through_root(name: str) -> Callable[[Path], LayerBuilder]:
    """A symlink named like the root, pointing at the canary dir, then files that would follow it."""
    return lambda out: LayerBuilder().file("before", b"x").symlink(name, str(out)).file("evil", b"x", mode=0o4755)


CASES: dict[str, Callable[[Path], LayerBuilder]] = {
    **{"root-symlink-%d" % i: _through_root(name) for i, name in enumerate(["/", "..", "a/../..", "/..", "../", "//"])},
    "root-file": lambda out: LayerBuilder().file("..", b"x").file("evil", b"x"),
    "root-dir-metadata": lambda out: LayerBuilder().dir("..", mode=0o700).file("inside", b"x"),
    "dotdot-name": lambda out: LayerBuilder().file("../../../../" + str(out).lstrip("/") + "/evil", b"x"),
    "absolute-name": lambda out: LayerBuilder().file(str(out / "evil"), b"x"),
    "symlink-out-then-file": lambda out: LayerBuilder().symlink("esc", str(out)).file("esc/evil", b"x"),
    "symlink-up-then-file": lambda out: LayerBuilder().symlink("up", "../../../../..").file("up/evil", b"x"),
    "hardlink-out": lambda out: LayerBuilder().hardlink("hl", str(out / "canary")),
    "hardlink-through-symlink": lambda out: LayerBuilder().symlink("s", str(out)).hardlink("hl", "s/canary"),
    "whiteout-dotdot": lambda out: LayerBuilder().file(".wh..", b""),
    "deep-name": lambda out: LayerBuilder().file("a/" * 1200 + "f", b"x"),
    **{
        "deep-through-%d-symlinks" % n: lambda out, n=n: LayerBuilder().dir("d/").symlink("d/up", "..").file("d/up/" * n + "f", b"x")
        for n in (40, 41, 600)
    },
}


def _emustore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=600)


def _snapshot(top: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"") for p in top.rglob("*")}


def test_hostile_layers_get_dockerds_verdict(
    scratch: Path, registry: RegistryServer, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    tmp_path = scratch  # deep trees: removed by the fixture, never by pytest's recursive cleanup
    out = tmp_path / "outside"
    out.mkdir()
    (out / "canary").write_bytes(b"do not touch\n")
    before = _snapshot(out)
    roots = {kind: tmp_path / kind for kind in ("dockerd-pull", "dockerd-load", "pull", "load", "from")}
    pulling, loading = dockerd_factory(roots["dockerd-pull"]), dockerd_factory(roots["dockerd-load"])
    mismatches, figures = [], {"cases": 0, "refused": 0, "accepted": 0, "outside_changes": 0, "multi_line_errors": 0}
    for case, build in CASES.items():
        image = ImageBuilder("docker").layer(build(out), created_by=case)
        reference = image.push(registry.host, "hostile/" + case, "v1").reference
        archive = tmp_path / (case + ".tar")
        image.write_docker_archive(archive, reference)
        dockerd = {
            "pull": pulling.docker("pull", reference, check=False).returncode == 0,
            "load": loading.docker("load", "-i", str(archive), check=False).returncode == 0,
        }
        ours = {
            "pull": _emustore("pull", "-q", reference, "--root", str(roots["pull"])),
            "load": _emustore("load", "-q", "-i", str(archive), "--root", str(roots["load"])),
            "from": _emustore("pull", "-q", "--from", "docker-archive:" + str(archive), reference, "--root", str(roots["from"])),
        }
        for how, result in ours.items():
            accepted = result.returncode == 0
            expected = dockerd["load" if how == "from" else how]
            figures["cases"] += 1
            figures["accepted" if accepted else "refused"] += 1
            if accepted != expected:
                mismatches.append("%s by %s: dockerd %s, emustore %s: %s" % (
                    case, how, "accepted" if expected else "refused", "accepted" if accepted else "refused",
                    result.stderr.strip()))
            if not accepted and len(result.stderr.strip().splitlines()) != 1:
                figures["multi_line_errors"] += 1
                mismatches.append("%s by %s: not a one-line error: %s" % (case, how, result.stderr))
        figures["outside_changes"] += _snapshot(out) != before
        assert _snapshot(out) == before, "the canary changed after " + case
    pulling.stop()
    loading.stop()
    record("hostile layers vs dockerd", **figures)
    assert mismatches == [], "\n".join(mismatches)
    for kind in ("pull", "load", "from"):
        assert check(roots[kind]) == [], kind
    differences = diff_trees(roots["dockerd-pull"], roots["pull"])
    assert differences == [], "\n".join(differences[:40])
    differences = diff_trees(roots["dockerd-load"], roots["load"])
    assert differences == [], "\n".join(differences[:40])

    # what was accepted can be removed again, deep trees included, leaving a clean root
    accepted = ["hostile/deep-name:v1", "hostile/deep-through-40-symlinks:v1", "hostile/root-dir-metadata:v1"]
    removed = _emustore("rmi", *(registry.host + "/" + name for name in accepted), "--root", str(roots["pull"]))
    assert removed.returncode == 0, removed.stderr
    assert check(roots["pull"]) == []
    deep = subprocess.run(["find", str(roots["pull"] / "overlay2"), "-mindepth", "100", "-print", "-quit"], capture_output=True)
    assert deep.stdout == b"", "a deep tree was left behind"
