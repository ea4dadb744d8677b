"""Containers: `emustore create` writes what `docker create` writes, and dockerd adopts it.

dockerd pulls an image and creates two containers (named with env/entrypoint/cmd, and anonymous)
in its root; emustore does the same in another; the trees must be equal once ids, times and
generated names are normalised. Then a dockerd on emustore's root lists, diffs, runs and removes
a container whose upper layer emustore changed (cp, whiteout), and `emustore rm` leaves the
root as it was before `create` (but for the image's `committed`, as dockerd leaves it). `ps` is
compared cell by cell with `docker ps` for containers dockerd ran. (`cp`: test_containers_cp.py.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emustore.commands import ps
from emustore.display import table
from emustore.fsck import check
from emustore.pull import pull
from emustore.stores.docker.catalog import Catalog
from emustore.stores.docker.containers import ContainerStore
from emustore.stores.docker.containerstate import is_running
from tests.support.containertree import diff_roots_with_containers
from tests.support.dockerd import Dockerd
from tests.support.imagebuild import canonical_json
from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

NAMED = ["--name", "web", "-e", "FOO=bar", "-e", "PATH=/bin", "--entrypoint", "/bin/sh"]
NAMED_CMD = ["-c", "cat /greeting.txt; ls /bin"]


def emustore(command: str, *args: str, root: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an emustore command; --root comes first since create's COMMAND takes every later word."""
    result = subprocess.run(
        [sys.executable, "-m", "emustore", command, "--root", str(root), *args], capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"emustore {command} {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@dataclass
class ConfiguredImage(ImageBuilder):
    """An image whose config carries more container settings than Cmd and Env."""

    extra: dict[str, Any] = field(default_factory=dict)

    def config_bytes(self) -> bytes:
        doc = json.loads(super().config_bytes())
        doc["config"].update(self.extra)
        return canonical_json(doc)


RICH_CONFIG = {
    "Entrypoint": ["/bin/sh", "-c"], "WorkingDir": "/bin", "User": "1:2", "Labels": {"z": "1", "a": "2"},
    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "StopSignal": "SIGQUIT", "OnBuild": ["RUN x"],
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5000000000}, "Shell": ["/bin/sh", "-c"], "ArgsEscaped": True,
}


def rich_image() -> ImageBuilder:
    """Paths the init layer meets: /etc (odd owner, a hosts file, an mtab link), /proc, /dev."""
    base = busybox_image("docker", cmd=("sh",))
    image = ConfiguredImage(cmd=("sh",), history=list(base.history), extra=RICH_CONFIG)
    extra = (
        LayerBuilder().dir("etc/", mode=0o750, uid=1, gid=2).file("etc/hosts", b"127.0.0.1 x\n", mode=0o600)
        .dir("proc/", mode=0o555).dir("dev/", mode=0o700, uid=3, gid=3).symlink("etc/mtab", "../proc/self/mounts")
    )
    return image.layer(extra, created_by="init-layer paths")


def symlinked_image() -> ImageBuilder:
    """/etc a symlink, /dev/console a device, /.dockerenv a dir: the init layer replaces them."""
    extra = (
        LayerBuilder().dir("usr/").dir("usr/etc/").symlink("etc", "usr/etc").dir("dev/")
        .chardev("dev/console", 5, 1).dir(".dockerenv/").file(".dockerenv/x", b"x")
    )
    return busybox_image("docker", cmd=("sh",)).layer(extra, created_by="odd paths")


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> PushedImage:
    return busybox_image("docker", cmd=("sh",), env=("PATH=/usr/bin:/bin", "LANG=C")).push(registry.host, "ct/busybox", "v1")


@pytest.fixture(scope="module")
def more_images(registry: RegistryServer) -> list[PushedImage]:
    return [rich_image().push(registry.host, "ct/rich", "v1"), symlinked_image().push(registry.host, "ct/odd", "v1")]


def _create_all(create: Callable[..., str], image: PushedImage, more: list[PushedImage]) -> list[str]:
    ids = [create(*NAMED, image.reference, *NAMED_CMD), create(image.reference)]
    rich, odd = (i.reference for i in more)
    ids += [create(rich), create(rich, "echo", "hi"), create("--entrypoint", "", rich, "echo"), create(odd)]
    return ids


def test_create_tree_equals_dockerd(
    image: PushedImage, more_images: list[PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    host = _host_files(tmp_path / "host")
    copies = [(host / "greeting.txt", "web:/"), (host / "conf", "web:/etc/app"), (host / "conf", "web:/bin/")]
    daemon = dockerd_factory(tmp_path / "dockerd")
    for pulled in (image, *more_images):
        daemon.docker("pull", pulled.reference)
    _create_all(lambda *a: daemon.docker("create", *a).stdout.strip(), image, more_images)
    for source, target in copies:
        daemon.docker("cp", str(source), target)
    daemon.stop()

    ours = tmp_path / "emustore"
    for pulled in (image, *more_images):
        pull(pulled.reference, ours)
    ids = _create_all(lambda *a: emustore("create", *a, root=ours).stdout.strip(), image, more_images)
    assert all(len(i) == 64 for i in ids)
    for source, target in copies:
        emustore("cp", str(source), target, root=ours)

    differences = diff_roots_with_containers(tmp_path / "dockerd", ours, names=True)
    assert differences == [], "\n".join(differences[:60])
    # fsck takes containers as dockerd writes them, and as emustore does
    assert [str(p) for p in check(tmp_path / "dockerd")] == []
    assert [str(p) for p in check(ours)] == []


def _host_files(base: Path) -> Path:
    (base / "conf" / "sub").mkdir(parents=True)
    (base / "greeting.txt").write_text("hello\n")
    (base / "conf" / "app.ini").write_text("x=1\n")
    (base / "conf" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (base / "conf" / "link").symlink_to("app.ini")
    os.chmod(base / "conf" / "sub" / "run.sh", 0o750)
    os.chmod(base / "conf" / "sub", 0o700)
    os.chmod(base / "greeting.txt", 0o640)
    return base


def test_dockerd_adopts_emustore_containers(
    image: PushedImage, dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    pull(image.reference, root)
    pristine = tmp_path / "pristine"
    subprocess.run(["cp", "-a", str(root), str(pristine)], check=True)
    host = tmp_path / "host"
    host.mkdir()
    (host / "greeting.txt").write_text("hello from emustore\n")
    (host / "conf").mkdir()
    (host / "conf" / "app.ini").write_text("x=1\n")

    emustore("create", *NAMED, "--rm-file", "/bin/ls", image.reference, "-c", "cat /greeting.txt /etc/app/app.ini; ls /bin", root=root)
    emustore("cp", str(host / "greeting.txt"), "web:/", root=root)
    emustore("cp", str(host / "conf"), "web:/etc/app", root=root)
    other = emustore("create", image.reference, root=root).stdout.strip()
    ours_ps = emustore("ps", "-a", root=root).stdout

    daemon = dockerd_factory(root)
    theirs_ps = daemon.docker("ps", "-a").stdout
    assert _without_created(ours_ps) == _without_created(theirs_ps)
    assert other[:12] in theirs_ps and " web\n" in theirs_ps

    assert sorted(daemon.docker("diff", "web").stdout.splitlines()) == sorted(
        ["A /greeting.txt", "C /etc", "A /etc/app", "A /etc/app/app.ini", "C /bin", "D /bin/ls"]
    )
    run = daemon.docker("start", "-a", "web")
    assert run.stdout.splitlines() == ["hello from emustore", "x=1", "busybox", "cat", "echo", "sh", "true"]
    assert daemon.docker("rm", "web").stdout == "web\n"
    daemon.stop()
    assert [p.name for p in (root / "image/overlay2/layerdb/mounts").iterdir()] == [other]

    # dockerd removed web cleanly; `emustore rm` removes the other: back to the pulled tree + committed
    assert emustore("rm", other[:6], root=root).stdout == other[:6] + "\n"
    assert emustore("ps", "-a", "-q", root=root).stdout == ""
    # what stays, as with dockerd: the top layer's `committed` and the (empty) mounts/ and containers/
    expected = {"only in B: image/overlay2/layerdb/mounts (d)"}
    differences = [d for d in diff_trees(pristine, root) if d not in expected and not d.endswith("/committed (f)")]
    assert differences == [], "\n".join(differences)
    assert list((root / "containers").iterdir()) == []
    assert list((root / "image/overlay2/layerdb/mounts").iterdir()) == []
    assert sorted(p.name for p in (root / "overlay2").iterdir()) == sorted(p.name for p in (pristine / "overlay2").iterdir())


def _without_created(text: str) -> list[list[str]]:
    """`ps` rows split on runs of 2+ spaces, CREATED (4th column) dropped (it moves with time)."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
    return [row[:3] + row[4:] for row in rows]


# `ps`: STATUS and the other columns of containers dockerd ran


def _cells(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines()]


def _ours_between(root: Path, start: float, end: float, running_only: bool) -> tuple[list[list[str]], list[list[str]]]:
    """emustore's table as it reads at `start` and at `end` (dockerd printed its own in between)."""
    containers = [c for c in ContainerStore(root).list() if is_running(c.doc) or not running_only]
    catalog = Catalog(root)
    return tuple(_cells(table(ps.HEADER, ps.rows(containers, catalog, False, now))) for now in (start, end))  # type: ignore[return-value]


def _assert_same_table(theirs: str, ours: tuple[list[list[str]], list[list[str]]]) -> None:
    """Cell by cell: each of docker's cells is emustore's at one of the two times."""
    rows = _cells(theirs)
    assert len(rows) == len(ours[0]) == len(ours[1]), (theirs, ours)
    for row, early, late in zip(rows, *ours):
        assert len(row) == len(early), (row, early)
        assert all(cell in (a, b) for cell, a, b in zip(row, early, late)), (row, early, late)


def test_ps_matches_docker_for_containers_dockerd_ran(
    image: PushedImage, dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    """Issue 14.3: Up, Up (Paused), Exited (CODE) X ago, Created, read from config.v2.json, as
    `docker ps [-a]` prints them while dockerd runs and after it stopped."""
    root = tmp_path / "root"
    pull(image.reference, root)
    emustore("create", "--name", "three", image.reference, "sh", "-c", "exit 3", root=root)
    emustore("create", "--name", "never", image.reference, root=root)
    emustore("create", "--name", "sleeper", image.reference, "sh", "-c", "sleep 600", root=root)
    daemon = dockerd_factory(root)
    daemon.docker("start", "-a", "three", check=False)
    daemon.docker("run", "--name", "theirs", image.reference, "echo", "hi")
    daemon.docker("start", "sleeper")
    for paused in (False, True):
        if paused:
            daemon.docker("pause", "sleeper")
        start = time.time()
        theirs = daemon.docker("ps").stdout, daemon.docker("ps", "-a").stdout
        end = time.time()
        _assert_same_table(theirs[0], _ours_between(root, start, end, running_only=True))
        _assert_same_table(theirs[1], _ours_between(root, start, end, running_only=False))
    assert "Up " in theirs[0] and "(Paused)" in theirs[0]
    daemon.docker("unpause", "sleeper")
    daemon.docker("stop", "-t", "1", "sleeper")
    start = time.time()
    theirs_all = daemon.docker("ps", "-a").stdout
    end = time.time()
    daemon.stop()
    _assert_same_table(theirs_all, _ours_between(root, start, end, running_only=False))
    statuses = {row[-1]: row[4] for row in _cells(theirs_all)[1:]}
    assert statuses["never"] == "Created" and statuses["three"].startswith("Exited (3) ")
    assert statuses["sleeper"].startswith("Exited (137) ") and statuses["theirs"].startswith("Exited (0) ")
    ours_cli = _cells(emustore("ps", "-a", root=root).stdout)  # the command prints that table (times aside)
    assert [row[:3] + row[5:] for row in ours_cli] == [row[:3] + row[5:] for row in _cells(theirs_all)]
    assert _cells(emustore("ps", root=root).stdout) == [_cells(theirs_all)[0]]  # nothing runs
