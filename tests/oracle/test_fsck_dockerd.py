"""fsck against the oracle: a dockerd-written root (with containers) is clean, a root that
`fsck --repair` cleaned up is one dockerd starts on and lists, and so is a root whose pulls were
killed and run again (clean without --repair)."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.fsck import check, repair
from emustore.pull import pull
from emustore.stores.docker.ownership import RootInUse
from tests.integration.test_fsck import fsck_image, leave_pull_leftovers
from tests.integration.test_robust_crash import _files_layer, _staged
from tests.support.faults import pull_process
from tests.support.figures import record
from tests.support.dockerd import Dockerd
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> list[PushedImage]:
    return [
        fsck_image().push(registry.host, "fsck-oracle/three", "v1"),  # type: ignore[attr-defined]
        busybox_image("oci", cmd=["sh"]).push(registry.host, "fsck-oracle/base", "v1"),
    ]


def test_dockerd_root_with_containers_is_clean(
    images: list[PushedImage], tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    root = tmp_path / "dockerd-root"
    daemon = dockerd_factory(root)
    for image in images:
        daemon.docker("pull", image.reference)
    daemon.docker("create", "--network", "none", "--name", "kept", images[0].reference, "sh")
    daemon.docker("run", "--network", "none", images[1].reference, "true")
    with pytest.raises(RootInUse):
        repair(root)  # a live daemon's layerdb/tmp and overlay2 dirs are not leftovers
    daemon.stop()
    assert list((root / "image" / "overlay2" / "layerdb" / "mounts").iterdir()), "no container layers made"
    assert [str(p) for p in check(root)] == []
    assert repair(root) == []


def test_repaired_emustore_root_is_adopted_by_dockerd(
    images: list[PushedImage], tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    root = tmp_path / "emustore-root"
    for image in images:
        pull(image.reference, root)
    leftovers = leave_pull_leftovers(root)
    assert sorted(repair(root)) == leftovers
    assert [str(p) for p in check(root)] == []
    daemon = dockerd_factory(root)
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    assert listed == {image.image_id for image in images}
    run = daemon.docker("run", "--rm", "--network", "none", images[0].reference, "cat", "/etc/motd")
    assert run.stdout == "hello fsck\n"
    daemon.stop()


KILL_PHASES = ("download", "extraction", "registration", "references")


def _phase_started(phase: str, root: Path, image: PushedImage, layers_before: int) -> bool:
    layerdb = root / "image" / "overlay2" / "layerdb" / "sha256"
    if phase == "download":
        return bool(_staged(root))
    if phase == "extraction":
        return any(path.is_dir() and any((path / "diff").glob("*")) for path in _staged(root))
    if phase == "registration":
        return layerdb.is_dir() and len(list(layerdb.iterdir())) > layers_before
    return (root / "image" / "overlay2" / "imagedb" / "content" / "sha256" / image.image_id[7:]).exists()


def kill_pull_in_phase(image: PushedImage, root: Path, phase: str, rng: random.Random) -> bool:
    """Start a pull of `image` into `root` and SIGKILL it a random moment after `phase` began;
    False if it finished first."""
    layerdb = root / "image" / "overlay2" / "layerdb" / "sha256"
    layers_before = len(list(layerdb.iterdir())) if layerdb.is_dir() else 0
    proc = pull_process(image.reference, str(root))
    while proc.poll() is None and not _phase_started(phase, root, image, layers_before):
        time.sleep(0.0002)
    time.sleep(rng.uniform(0, 0.005))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return killed


def test_dockerd_adopts_a_root_whose_pulls_were_killed_and_run_again(
    registry: RegistryServer, tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    """One image per phase, its pull killed there (SIGKILL) and run again: fsck finds nothing, not
    even leftovers, and dockerd lists, inspects and runs every image."""
    root = tmp_path / "root"
    base = busybox_image()
    pushed = [
        base.copy()
        .layer(_files_layer(phase, 120), created_by=phase)
        .layer(_files_layer(phase + "-top", 60), created_by=phase + " top")
        .push(registry.host, f"killed-oracle/{phase}", "v1")
        for phase in KILL_PHASES
    ]
    rng = random.Random(3)
    kills = 0
    for phase, image in zip(KILL_PHASES, pushed):
        kills += kill_pull_in_phase(image, root, phase, rng)
        rerun = pull_process(image.reference, str(root))
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
    assert [str(p) for p in check(root)] == []
    daemon = dockerd_factory(root)
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    assert listed == {image.image_id for image in pushed}
    for image in pushed:
        inspect = daemon.api("GET", f"/v1.41/images/{image.image_id}/json").json()
        assert inspect["RootFS"]["Layers"] == list(image.diff_ids)
    run = daemon.docker("run", "--rm", "--network", "none", pushed[2].reference, "cat", "/registration/file-0007")
    assert run.stdout == "registration 7\n" * 20
    daemon.stop()
    record("dockerd after killed pulls and re-runs", trials=len(pushed), kills=kills, leftovers=0, adopted=len(pushed))
