"""The robustness verdicts judged by dockerd itself, not only by emustore's fsck: a root left by a pull
killed at any phase (before any re-run or repair), and a root written by concurrent pulls, are roots
dockerd starts on, whose images it lists with their layers, and runs."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.pull import pull
from tests.integration.test_robust_crash import _files_layer
from tests.oracle.test_fsck_dockerd import KILL_PHASES, kill_pull_in_phase
from tests.support.dockerd import Dockerd
from tests.support.faults import pull_process
from tests.support.figures import record
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image()
    pushed = {"base": base.push(registry.host, "adopted/base", "v1")}
    for name in ("one", "two", "three"):
        pushed[name] = (
            base.copy()
            .layer(_files_layer(name, 120), created_by=name)
            .layer(_files_layer(name + "-top", 60), created_by=name + " top")
            .push(registry.host, f"adopted/{name}", "v1")
        )
    return pushed


def _listed(daemon: Dockerd) -> dict[str, list[str]]:
    """Image id → its RootFS layers, for every image dockerd loaded."""
    ids = [image["Id"] for image in daemon.api("GET", "/v1.41/images/json", params={"all": "1"}).json()]
    return {image_id: daemon.api("GET", f"/v1.41/images/{image_id}/json").json()["RootFS"]["Layers"] for image_id in ids}


def test_dockerd_starts_on_a_root_right_after_a_killed_pull(
    images: dict[str, PushedImage], tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    """Killed (SIGKILL) in each phase and left as it is: dockerd lists the base image and, at most,
    the killed image whole (never a part of it), and runs the base."""
    seeded = tmp_path / "seeded"
    pull(images["base"].reference, seeded)
    expected = {image.image_id: list(image.diff_ids) for image in images.values()}
    rng = random.Random(15)
    kills = complete = adopted = 0
    for phase in KILL_PHASES:
        root = tmp_path / phase
        shutil.copytree(seeded, root, symlinks=True)
        killed = images["one"]
        kills += kill_pull_in_phase(killed, root, phase, rng)
        daemon = dockerd_factory(root)
        listed = _listed(daemon)
        assert images["base"].image_id in listed, phase
        assert set(listed) <= {images["base"].image_id, killed.image_id}, (phase, listed)
        assert all(layers == expected[image_id] for image_id, layers in listed.items()), (phase, listed)
        complete += killed.image_id in listed
        run = daemon.docker("run", "--rm", "--network", "none", images["base"].reference, "echo", "adopted")
        assert run.stdout == "adopted\n", phase
        adopted += 1
        daemon.stop()
    record(
        "dockerd on roots left by killed pulls",
        trials=len(KILL_PHASES), kills=kills, adopted=adopted, killed_image_whole=complete,
    )


def test_dockerd_adopts_a_root_written_by_concurrent_pulls(
    images: dict[str, PushedImage], tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    """Six pulls at once (two of each image, sharing the base layers) into one root: dockerd lists
    exactly those images with their layers and runs each."""
    root = tmp_path / "root"
    wanted = [images[name] for name in ("one", "two", "three")]
    procs = [pull_process(image.reference, str(root)) for image in wanted * 2]
    failed = 0
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        failed += proc.returncode != 0
        assert proc.returncode == 0, err
    daemon = dockerd_factory(root)
    listed = _listed(daemon)
    assert listed == {image.image_id: list(image.diff_ids) for image in wanted}
    runs = 0
    for image in wanted:
        name = image.repository.rsplit("/", 1)[1]
        run = daemon.docker("run", "--rm", "--network", "none", image.reference, "cat", f"/{name}-top/file-0003")
        assert run.stdout == f"{name}-top 3\n" * 20
        runs += 1
    daemon.stop()
    record("dockerd on a root of concurrent pulls", pulls=len(procs), failed_pulls=failed, images=len(listed), runs=runs)
