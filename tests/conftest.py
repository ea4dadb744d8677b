"""Shared fixtures: a real registry (registry tier) and private dockerd daemons (oracle tier)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emustore.fsutil import remove_tree
from tests.support.canary import hostile_links_layer, make_canary
from tests.support.dockerd import DOCKER_CLI, DOCKERD_BINARY, Dockerd
from tests.support.figures import summary_lines
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import REGISTRY_BINARY, RegistryServer
from tests.support.tiers import require_binary

# the CLI turns an unexpected exception into one line; the tests want its traceback, to see the bug
os.environ["EMUSTORE_DEBUG"] = "1"

REGISTRY_MISSING = "docker-registry not installed (registry tier; CI=true makes this a failure)"
DOCKERD_MISSING = "dockerd not installed (oracle tier; CI=true makes this a failure)"


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    require_binary(REGISTRY_BINARY, REGISTRY_MISSING)
    server = RegistryServer()
    yield server
    server.stop()


@pytest.fixture
def dockerd_factory() -> Iterator[Callable[[Path], Dockerd]]:
    """`start(data_root)` starts a daemon on that data root; all are stopped at teardown."""
    require_binary(DOCKERD_BINARY, DOCKERD_MISSING)
    require_binary(DOCKER_CLI, DOCKERD_MISSING)
    daemons: list[Dockerd] = []

    def start(data_root: Path) -> Dockerd:
        workdir = Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))
        try:
            daemon = Dockerd(data_root, workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()
        shutil.rmtree(daemon.workdir, ignore_errors=True)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temp dir outside pytest's basetemp, removed after the test even when it fails: hostile
    layers leave directories deeper than pytest's own (recursive) cleanup can remove. Request it
    before dockerd_factory, so that daemons are stopped before it goes."""
    path = Path(tempfile.mkdtemp(prefix="emustore-test-"))
    yield path
    remove_tree(path, ignore_errors=True)
@pytest.fixture(scope="module")
def module_canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A canary dir for hostile paths to aim at (tests/support/canary.py)."""
    return make_canary(tmp_path_factory.mktemp("canary") / "c")


@pytest.fixture(scope="module")
def hostile_image(registry: RegistryServer, module_canary: Path) -> PushedImage:
    """busybox plus links aimed out of the root, at `module_canary` and at <tmp>/canary."""
    layer = hostile_links_layer(module_canary)
    return busybox_image("docker", cmd=("sh",)).layer(layer, created_by="links aimed outside").push(registry.host, "hostile/links", "v1")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures of the robustness tests (tests/support/figures.py), so CI logs show them."""
    lines = summary_lines()
    if lines:
        terminalreporter.section("robustness figures")
        for line in lines:
            terminalreporter.write_line(line)
