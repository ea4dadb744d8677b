"""Fidelity: emustore's tree equals dockerd 20.10's for the same pulls, and dockerd adopts it.

One dockerd pulls the whole factory suite (plus a re-pull and a moved tag) into its own data
root; emustore does the same pulls into another; the two trees must compare equal (§11).
Then a dockerd started on emustore's root must list, inspect, run, save and push the images.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.pull import pull
from tests.support.dockerd import Dockerd
from tests.support.imagefactory import FACTORY_SUITE, PushedImage, busybox_image, twin_maps
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

PULLABLE = [name for name, build in FACTORY_SUITE.items() if not build().needs_gzip_twin]
ZSTD = [name for name, build in FACTORY_SUITE.items() if build().needs_gzip_twin]
RUNNABLE = ("modes_owners", "whiteouts", "links_devices", "oci_index", "docker_list")


@pytest.fixture(scope="module")
def suite(registry: RegistryServer) -> dict[str, PushedImage]:
    pushed = {name: FACTORY_SUITE[name]().push(registry.host, f"suite/{name}", "v1") for name in PULLABLE}
    # a tag that moves: "moving:v1" first names one image, later another
    pushed["moving-before"] = busybox_image("docker", cmd=["sh"]).push(registry.host, "suite/moving", "v1")
    return pushed


def _pull_sequence(suite: dict[str, PushedImage], registry: RegistryServer) -> list[Callable[[], str]]:
    """The pulls both sides perform, in order; each step returns the reference it pulled."""

    def move_tag() -> str:
        busybox_image("oci", cmd=["true"]).push(registry.host, "suite/moving", "v1")
        return suite["moving-before"].reference

    steps: list[Callable[[], str]] = [lambda image=image: image.reference for image in suite.values()]
    steps.append(lambda: suite[PULLABLE[0]].reference)  # pulling the same image again changes nothing
    steps.append(lambda: suite["whiteouts"].digest_reference)  # by digest: digest key only
    steps.append(move_tag)
    return steps


@pytest.fixture(scope="module")
def roots(suite: dict[str, PushedImage], registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fidelity")
    return {"dockerd": base / "dockerd", "emustore": base / "emustore"}


def test_suite_tree_equals_dockerd(
    suite: dict[str, PushedImage], registry: RegistryServer, roots: dict[str, Path], dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    steps = _pull_sequence(suite, registry)
    daemon = dockerd_factory(roots["dockerd"])
    for step in steps[:-1]:
        daemon.docker("pull", step())
        pull(step(), roots["emustore"])
    # the moved tag: both sides pull after the registry changed
    reference = steps[-1]()
    daemon.docker("pull", reference)
    pull(reference, roots["emustore"])
    daemon.stop()
    differences = diff_trees(roots["dockerd"], roots["emustore"])
    assert differences == [], "\n".join(differences[:60])


def test_dockerd_adopts_the_emustore_root(
    suite: dict[str, PushedImage], registry: RegistryServer, roots: dict[str, Path], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    if not (roots["emustore"] / "image").exists():
        pytest.fail("the fidelity test did not populate the emustore root")
    daemon = dockerd_factory(roots["emustore"])
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    wanted = {image.image_id for name, image in suite.items() if name != "moving-before"}
    assert wanted <= listed
    images_out = daemon.docker("images", "--digests").stdout
    assert "suite/whiteouts" in images_out

    for name, image in suite.items():
        inspect = json.loads(daemon.docker("image", "inspect", image.image_id).stdout)[0]
        assert inspect["Id"] == image.image_id
        assert inspect["RootFS"]["Layers"] == list(image.diff_ids)
        assert inspect["GraphDriver"]["Name"] == "overlay2"

    for name in RUNNABLE:
        run = daemon.docker("run", "--rm", "--network", "none", suite[name].reference, "sh", "-c", "echo ok")
        assert run.stdout == "ok\n", name

    for name, image in suite.items():
        archive = tmp_path / f"{name}.tar"
        daemon.docker("save", "-o", str(archive), image.image_id)
        assert _saved_layer_digests(archive) == list(image.diff_ids), name

    target = f"{registry.host}/adopted/whiteouts:pushed"
    daemon.docker("tag", suite["whiteouts"].reference, target)
    pushed = daemon.docker("push", target)
    assert "digest: sha256:" in pushed.stdout
    daemon.stop()


def _saved_layer_digests(archive: Path) -> list[str]:
    """sha256 of every layer tar of a `docker save` archive, in manifest order."""
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        digests = []
        for layer in manifest["Layers"]:
            member = tf.extractfile(layer)
            assert member is not None
            digests.append("sha256:" + hashlib.file_digest(member, "sha256").hexdigest())
        return digests


@pytest.mark.parametrize("name", ZSTD)
def test_zstd_tree_equals_dockerd_pull_of_its_gzip_twin(
    name: str, registry: RegistryServer, dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    image = FACTORY_SUITE[name]()
    original = image.push(registry.host, f"zstd/{name}", "v1")
    twin = image.gzip_twin().push(registry.host, f"zstd/{name}-gzip", "v1")
    daemon = dockerd_factory(tmp_path / "dockerd")
    daemon.docker("pull", twin.reference)
    daemon.stop()
    pull(original.reference, tmp_path / "emustore")
    differences = diff_trees(tmp_path / "emustore", tmp_path / "dockerd", **twin_maps(original, twin))
    assert differences == [], "\n".join(differences[:60])
