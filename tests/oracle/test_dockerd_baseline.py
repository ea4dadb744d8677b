"""Two independent dockerd pulls of the same images must compare equal (validates the image
factory, the dockerd/registry fixtures and the §11 comparator before anything is judged by them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.dockerd import Dockerd
from tests.support.imagefactory import PushedImage
from tests.support.treecompare import diff_trees, normalized_tree

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

BASELINE = ("whiteouts", "links_devices", "oci_index")  # busybox base shared by all three


def pull_all(daemon: Dockerd, images: list[PushedImage]) -> None:
    for image in images:
        daemon.docker("pull", image.reference)


def test_two_dockerd_pulls_give_identical_trees(
    factory_suite: dict[str, PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    images = [factory_suite[name] for name in BASELINE]
    roots = [tmp_path / "first", tmp_path / "second"]
    for root in roots:
        daemon = dockerd_factory(root)
        pull_all(daemon, images)
        listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
        assert listed == {image.image_id for image in images}
        run = daemon.docker("run", "--rm", "--network", "none", images[0].reference, "sh", "-c", "echo ok")
        assert run.stdout == "ok\n"
        daemon.stop()

    tree = normalized_tree(roots[0])
    assert not [path for path in tree if "?" in path], "random ids left unmapped"
    for image in images:
        assert f"image/overlay2/imagedb/content/sha256/{image.image_id[7:]}" in tree
    assert sum(node.mtime_ns is not None for node in tree.values()) > 20
    assert diff_trees(*roots) == []
