"""explain on a root dockerd wrote (with a container on top): the same walk, from dockerd's files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_explain import emustore, expected_facts
from tests.integration.test_fsck import fsck_image
from tests.support.dockerd import Dockerd
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


def test_explain_walks_a_dockerd_root(registry: RegistryServer, tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]) -> None:
    pushed = fsck_image().push(registry.host, "explain-oracle/three", "v1")  # type: ignore[attr-defined]
    root = tmp_path / "dockerd-root"
    daemon = dockerd_factory(root)
    daemon.docker("pull", pushed.reference)
    daemon.docker("create", "--network", "none", pushed.reference, "sh")
    daemon.stop()
    result = emustore("explain", pushed.reference, "--root", str(root))
    assert result.returncode == 0, result.stderr
    for fact in expected_facts(root, pushed):
        assert fact in result.stdout, f"{fact!r} not in:\n{result.stdout}"
    assert "also      work/, committed" in result.stdout.split("(top)")[1]  # the container committed the top layer
