"""Shared fixtures: a real registry (registry tier) and private dockerd daemons (oracle tier)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emustore.fsutil import remove_tree
from tests.support.canary import hostile_links_layer, make_canary
from tests.support.daemons import STARTED, Daemons
from tests.support.dockerd import Dockerd
from tests.support.figures import summary_lines
from tests.support.fidelity import push_factory_suite
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import REGISTRY_BINARY, RegistryServer
from tests.support.tiers import require_binary

# the CLI turns an unexpected exception into one line; the tests want its traceback, to see the bug
os.environ["EMUSTORE_DEBUG"] = "1"

REGISTRY_MISSING = "docker-registry not installed (registry tier; CI=true makes this a failure)"


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    require_binary(REGISTRY_BINARY, REGISTRY_MISSING)
    server = RegistryServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def factory_suite(registry: RegistryServer) -> dict[str, PushedImage]:
    """Every FACTORY_SUITE image pushed once per session as `suite/<name>:v1`; do not push over them."""
    return push_factory_suite(registry.host)


@pytest.fixture
def dockerd_factory() -> Iterator[Callable[[Path], Dockerd]]:
    """`start(data_root)` starts a 20.10 daemon on that data root; all are stopped at teardown."""
    Daemons.require("20.10")
    daemons = Daemons()
    yield lambda data_root: daemons.start("20.10", data_root)
    daemons.stop()


@pytest.fixture
def engine_factory() -> Iterator[Callable[[str, Path], Dockerd]]:
    """`start(version, data_root)` starts engine "20.10", "26" or "28" on that data root (a missing
    engine fails under CI=true, skips otherwise); all are stopped at teardown."""
    daemons = Daemons()
    yield daemons.start
    daemons.stop()


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
    """Figures of the robustness tests (tests/support/figures.py) and the exact versions of the
    engines the oracle tiers started, so CI logs show them."""
    if STARTED:
        terminalreporter.section("engines")
        for version, versions in sorted(STARTED.items()):
            terminalreporter.write_line(f"{version}: {versions}")
    lines = summary_lines()
    if lines:
        terminalreporter.section("robustness figures")
        for line in lines:
            terminalreporter.write_line(line)
