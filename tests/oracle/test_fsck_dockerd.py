"""fsck against the oracle: a dockerd-written root (with containers) is clean, and a root that
`fsck --repair` cleaned up is one dockerd starts on and lists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.fsck import check, repair
from emustore.pull import pull
from emustore.stores.docker.ownership import RootInUse
from tests.integration.test_fsck import fsck_image, leave_pull_leftovers
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
