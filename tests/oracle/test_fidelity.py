"""Fidelity: emustore's tree equals dockerd 20.10's for the same pulls, and dockerd adopts it.

One dockerd pulls the whole factory suite (plus a re-pull and a moved tag) into its own data
root; emustore does the same pulls into another; the two trees must compare equal (§11).
Then a dockerd started on emustore's root must list, inspect, run, save and push the images.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.pull import pull
from tests.support.dockerd import Dockerd
from tests.support.fidelity import PULLABLE_BY_2010, PullSequence, pull_sequence, saved_layer_digests
from tests.support.imagefactory import FACTORY_SUITE, PushedImage, twin_maps
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

ZSTD = [name for name, build in FACTORY_SUITE.items() if build().needs_gzip_twin]
RUNNABLE = ("modes_owners", "whiteouts", "links_devices", "oci_index", "docker_list")


@pytest.fixture(scope="module")
def suite(factory_suite: dict[str, PushedImage]) -> dict[str, PushedImage]:
    return {name: factory_suite[name] for name in PULLABLE_BY_2010}


@pytest.fixture(scope="module")
def sequence(suite: dict[str, PushedImage], registry: RegistryServer) -> PullSequence:
    return pull_sequence(suite, registry.host, "fidelity/moving")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fidelity")
    return {"dockerd": base / "dockerd", "emustore": base / "emustore"}


def test_suite_tree_equals_dockerd(
    sequence: PullSequence, roots: dict[str, Path], dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    daemon = dockerd_factory(roots["dockerd"])
    for reference in sequence.before:
        daemon.docker("pull", reference)
        pull(reference, roots["emustore"])
    # the moved tag: both sides pull after the registry changed
    sequence.move()
    daemon.docker("pull", sequence.moving.reference)
    pull(sequence.moving.reference, roots["emustore"])
    daemon.stop()
    differences = diff_trees(roots["dockerd"], roots["emustore"])
    assert differences == [], "\n".join(differences[:60])


def test_dockerd_adopts_the_emustore_root(
    suite: dict[str, PushedImage], sequence: PullSequence, registry: RegistryServer, roots: dict[str, Path],
    dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path,
) -> None:
    if not (roots["emustore"] / "image").exists():
        pytest.fail("the fidelity test did not populate the emustore root")
    daemon = dockerd_factory(roots["emustore"])
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    wanted = {image.image_id for image in suite.values()}
    assert wanted <= listed
    images_out = daemon.docker("images", "--digests").stdout
    assert "suite/whiteouts" in images_out

    suite = {**suite, "moving-before": sequence.moving}
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
        assert saved_layer_digests(archive) == list(image.diff_ids), name

    target = f"{registry.host}/adopted/whiteouts:pushed"
    daemon.docker("tag", suite["whiteouts"].reference, target)
    pushed = daemon.docker("push", target)
    assert "digest: sha256:" in pushed.stdout
    daemon.stop()


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
