"""create, cp, ps, rm from the command line on an emustore-pulled root; fsck, explain and rmi
see the containers; failures leave the root as it was. Against a real registry (no dockerd)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import emustore
from emustore.fsck import check
from emustore.stores.docker.containerconfig import CreateOptions
from emustore.stores.docker.containers import ContainerStore
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = pytest.mark.registry


def cli(root: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emustore", command, "--root", str(root), *args],
        capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> PushedImage:
    return busybox_image("docker", cmd=("sh",)).push(registry.host, "cli/busybox", "v1")


@pytest.fixture
def root(image: PushedImage, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    emustore.pull(image.reference, root=root)
    return root


def _snapshot(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "before"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    return copy


def test_create_cp_ps_rm(root: Path, image: PushedImage, tmp_path: Path) -> None:
    created = cli(root, "create", "--name", "web", "-e", "A=1", image.reference, "echo", "hello world")
    assert created.returncode == 0, created.stderr
    container_id = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    anonymous = cli(root, "create", image.reference).stdout.strip()

    ps = cli(root, "ps", "-a").stdout.splitlines()
    assert re.split(r"\s{2,}", ps[0]) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    row = re.split(r"\s{2,}", ps[2])
    assert row[:3] + row[4:] == [container_id[:12], image.reference, "\"echo 'hello world'\"", "Created", "web"]
    assert row[3].endswith(" ago")
    assert cli(root, "ps").stdout.splitlines()[1:] == []  # nothing runs
    assert cli(root, "ps", "-aq", "--no-trunc").stdout.split() == [anonymous, container_id]

    host = tmp_path / "f.txt"
    host.write_text("x")
    assert cli(root, "cp", str(host), "web:/bin/").returncode == 0
    upper = ContainerStore(root).stack(ContainerStore(root).find("web")).upper
    assert (upper / "bin" / "f.txt").read_text() == "x"
    missing = cli(root, "cp", str(host), "web:/nope/x")
    assert missing.returncode == 1 and "Could not find the file /nope" in missing.stderr
    assert check(root) == []

    used = cli(root, "rmi", image.reference)
    assert used.returncode != 0 and "container" in used.stderr
    assert cli(root, "rm", "web", anonymous[:5]).stdout.split() == ["web", anonymous[:5]]
    assert cli(root, "ps", "-aq").stdout == ""
    gone = cli(root, "rm", "web")
    assert (gone.returncode, gone.stderr) == (1, "emustore: No such container: web\n")
    assert check(root) == []
    assert cli(root, "rmi", image.reference).returncode == 0


def test_create_with_files_and_a_whiteout(root: Path, image: PushedImage, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "a.ini").write_text("a")
    result = cli(root, "create", "--add-file", f"{conf}:/etc/app", "--rm-file", "/bin/ls", image.reference)
    assert result.returncode == 0, result.stderr
    store = ContainerStore(root)
    upper = store.stack(store.find(result.stdout.strip())).upper
    assert (upper / "etc" / "app" / "a.ini").read_text() == "a"
    whiteout = (upper / "bin" / "ls").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0 and stat.S_IMODE(whiteout.st_mode) == 0
    assert check(root) == []
    walk = cli(root, "explain", image.reference).stdout
    assert "Container %s" % result.stdout.strip()[:12] in walk


def test_refusals_leave_the_root_unchanged(root: Path, image: PushedImage, tmp_path: Path) -> None:
    assert cli(root, "create", "--name", "web", image.reference).returncode == 0
    before = _snapshot(root, tmp_path)
    for args, message in (
        (["--name", "web", image.reference], 'Conflict. The container name "/web" is already in use'),
        (["--name", "a b", image.reference], "Invalid container name (a b)"),
        (["nosuch/image:v9"], "No such image: nosuch/image:v9"),
        (["--entrypoint", "", image.reference], "No command specified"),
        (["--rm-file", "/nope", image.reference], "No such file or directory in the container: /nope"),
        (["--add-file", "/definitely/missing:/x", image.reference], "no such file: /definitely/missing"),
    ):
        result = cli(root, "create", *args)
        assert result.returncode == 1 and result.stderr.startswith("emustore: " + message), (args, result.stderr)
        assert diff_trees(before, root) == [], args
        assert sorted(os.listdir(root / "containers")) == sorted(os.listdir(before / "containers"))


def test_failed_publication_leaves_nothing(root: Path, image: PushedImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(root, tmp_path)
    real_rename = os.rename

    def failing_rename(src: object, dst: object) -> None:
        if "/containers/" in str(dst):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError):
        ContainerStore(root).create(CreateOptions(image.reference))
    monkeypatch.undo()
    differences = [d for d in diff_trees(before, root) if not d.endswith("/committed (f)")]
    assert differences in ([], ["only in B: image/overlay2/layerdb/mounts (d)"])
    assert os.listdir(root / "containers") == [] and os.listdir(root / "image/overlay2/layerdb/mounts") == []
    assert os.listdir(root / "tmp" / "emustore-staging") == []
    assert check(root) == []
