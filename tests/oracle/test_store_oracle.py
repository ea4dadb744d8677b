"""images, inspect, tag, rmi, prune and du judged by a real dockerd 20.10 on the same roots.

* A dockerd started on an emustore-written root prints exactly what emustore prints for
  `images`, `image inspect` and the images part of `system df -v`.
* The same pulls followed by the same tag/rmi/prune steps, done by dockerd in one root and by
  emustore in another, print the same Untagged/Deleted lines and leave equal trees (§11); a
  dockerd then starts on the emustore root and lists the same images.
* emustore works on a dockerd-written root with a container: same conflicts, same result.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emustore.pull import pull
from tests.support.dockerd import Dockerd
from tests.support.imagebuild import canonical_json
from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


@dataclass
class RichImage(ImageBuilder):
    """An image whose config uses every container.Config field shape inspect has to reproduce."""

    extra: dict[str, Any] = field(default_factory=dict)

    def config_bytes(self) -> bytes:
        config = json.loads(super().config_bytes())
        for key, value in self.extra.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        config["history"][-1]["comment"] = "the last history comment stands in for Comment"
        return canonical_json(config)


def rich_image() -> RichImage:
    image = RichImage(
        created="2024-02-03T04:05:06.120000000+02:00",
        extra={
            "config": {
                "Cmd": "echo hi",
                "Entrypoint": None,
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Volumes": {"/data": {}},
                "Labels": {"org.example.html": "<b>&</b>", "empty": ""},
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 3},
                "StopSignal": "SIGTERM",
                "workingdir": "/srv",
                "User": "1000:1000",
                "Shell": ["/bin/sh", "-c"],
                "OnBuild": [],
                "ArgsEscaped": True,
                "unknown": 1,
            },
            "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD"], "Image": "sha256:" + "ab" * 32},
            "author": "emustore tests",
            "container": "c0ffee",
            "docker_version": "20.10.24",
            "os.version": "1.0",
        },
    )
    return image.layer(LayerBuilder().file("srv/hello", b"hello\n"), created_by="COPY hello /srv/")


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image("docker", created="2023-01-02T03:04:05Z")
    child = base.copy(created="2023-06-01T00:00:00Z").layer(LayerBuilder().file("etc/child", b"child\n"), created_by="child")
    return {
        "base": base.push(registry.host, "store/base", "v1"),
        "child": child.push(registry.host, "store/child", "v1"),
        "rich": rich_image().push(registry.host, "store/rich", "v1"),
    }


def emustore(root: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emustore", *args, "--root", str(root)],
        capture_output=True, text=True, input=input, timeout=300,
    )


def both_print(daemon: Dockerd, root: Path, docker_args: list[str], emustore_args: list[str]) -> str:
    theirs = daemon.docker(*docker_args)
    ours = emustore(root, *emustore_args)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout, "\n".join(difflib.unified_diff(theirs.stdout.splitlines(), ours.stdout.splitlines(), "docker", "emustore", lineterm=""))
    return ours.stdout


def test_dockerd_prints_what_emustore_prints(pushed: dict[str, PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path) -> None:
    root = tmp_path / "root"
    for image in pushed.values():
        pull(image.reference, root)
    tagged = emustore(root, "tag", pushed["base"].reference, "store/extra:x")
    assert tagged.returncode == 0, tagged.stderr
    daemon = dockerd_factory(root)

    for ref in [*(i.reference for i in pushed.values()), "store/extra:x", pushed["rich"].image_id[7:19], pushed["child"].digest_reference]:
        both_print(daemon, root, ["image", "inspect", ref], ["inspect", ref])
    # rows of one image with several repositories come in Go map order: compare them as sets
    for args in ([], ["--digests"], ["-q"], ["-a"], ["--no-trunc"], [pushed["base"].repository], ["store/extra:x"], ["*/store/*"]):
        ours, theirs = emustore(root, "images", *args).stdout, daemon.docker("images", *args).stdout
        assert ours.splitlines()[:1] == theirs.splitlines()[:1], args
        assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), args
    ours = emustore(root, "images", "--format", "json").stdout.splitlines()
    theirs = daemon.docker("images", "--format", "{{json .}}").stdout.splitlines()
    assert sorted(ours) == sorted(theirs)

    df = daemon.docker("system", "df", "-v").stdout
    du = emustore(root, "du", "-v").stdout
    assert du.split("\n\n")[:2] == df.split("\n\n")[:2]
    # emustore's summary has only the Images row, so docker's wider first column differs
    assert emustore(root, "du").stdout.splitlines()[1].split() == daemon.docker("system", "df").stdout.splitlines()[1].split()
    daemon.stop()
    # the same commands after dockerd ran on the root (it may rewrite files at start/stop)
    assert emustore(root, "images").returncode == 0


@dataclass
class Step:
    """One command run on both sides: docker args and the matching emustore args."""

    docker: list[str]
    emustore: list[str]


def steps(pushed: dict[str, PushedImage]) -> list[Step]:
    base, child, rich = pushed["base"], pushed["child"], pushed["rich"]
    return [
        Step(["tag", base.reference, "store/extra:x"], ["tag", base.reference, "store/extra:x"]),
        Step(["rmi", base.image_id[7:19]], ["rmi", base.image_id[7:19]]),  # conflict: two repositories
        Step(["rmi", "store/extra:x"], ["rmi", "store/extra:x"]),
        Step(["rmi", child.reference], ["rmi", child.reference]),
        Step(["rmi", "-f", rich.image_id], ["rmi", "-f", rich.image_id]),
        Step(["pull", child.digest_reference], []),  # dangling: digest only
        Step(["image", "prune", "-f"], ["image", "prune", "-f"]),
        Step(["rmi", "nosuch:tag"], ["rmi", "nosuch:tag"]),
    ]


def test_rmi_and_prune_leave_dockerds_tree(
    pushed: dict[str, PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    theirs, ours = tmp_path / "dockerd", tmp_path / "emustore"
    daemon = dockerd_factory(theirs)
    for image in pushed.values():
        daemon.docker("pull", image.reference)
        pull(image.reference, ours)
    for step in steps(pushed):
        result = daemon.docker(*step.docker, check=False)
        if not step.emustore:
            pull(step.docker[1], ours)
            continue
        mine = emustore(ours, *step.emustore)
        assert mine.returncode == result.returncode, (step, mine.stderr, result.stderr)
        assert mine.stdout == result.stdout, step
        if result.returncode:
            assert mine.stderr.removeprefix("emustore: ") == result.stderr.removeprefix("Error response from daemon: ").replace("Error: ", ""), step
    listed = daemon.docker("images", "-a", "--digests").stdout
    daemon.stop()
    assert not list((ours / "image/overlay2/layerdb/sha256").glob("*-removing"))
    differences = diff_trees(theirs, ours)
    assert differences == [], "\n".join(differences[:60])

    adopted = dockerd_factory(ours)
    assert adopted.docker("images", "-a", "--digests").stdout == listed
    assert emustore(ours, "images", "-a", "--digests").stdout == listed
    adopted.docker("run", "--rm", "--network", "none", pushed["base"].reference, "true")
    adopted.stop()


def test_rmi_on_a_dockerd_root_with_a_container(
    pushed: dict[str, PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    daemon = dockerd_factory(ours)
    daemon.docker("pull", pushed["base"].reference)
    daemon.docker("pull", pushed["child"].reference)
    daemon.docker("create", "--name", "user", pushed["child"].reference, "true")
    daemon.stop()
    subprocess.run(["cp", "-a", str(ours), str(theirs)], check=True)

    sequence = [
        ["tag", pushed["child"].reference, "store/extra:x"],
        ["rmi", "store/extra:x"],
        ["rmi", pushed["child"].reference],
        ["rmi", pushed["child"].image_id],
        ["rmi", "-f", pushed["child"].reference],
        ["rmi", pushed["base"].reference],
        ["image", "prune", "-a", "-f"],
    ]
    mine = [emustore(ours, *args) for args in sequence]
    daemon = dockerd_factory(theirs)
    # reading a dockerd-written root (with a container) while its daemon runs
    for ref in (pushed["base"].reference, pushed["child"].reference):
        both_print(daemon, theirs, ["image", "inspect", ref], ["inspect", ref])
    both_print(daemon, theirs, ["images", "-a", "--digests"], ["images", "-a", "--digests"])
    df, du = daemon.docker("system", "df", "-v").stdout, emustore(theirs, "du", "-v").stdout
    assert du.split("\n\n")[:2] == df.split("\n\n")[:2]
    for args, result in zip(sequence, mine):
        expected = daemon.docker(*args, check=False)
        assert (result.returncode, result.stdout) == (expected.returncode, expected.stdout), args
        assert result.stderr.removeprefix("emustore: ") == expected.stderr.removeprefix("Error response from daemon: "), args
    daemon.stop()
    differences = diff_trees(theirs, ours)
    assert differences == [], "\n".join(differences[:60])
