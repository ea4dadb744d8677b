"""pytest plugin: the `docker_root` fixture, a Docker 20.10 data root with a pulled image.

Enabled automatically when emustore is installed (entry point `pytest11`). Name the image with
a marker, an indirect parameter, or by overriding the `docker_root_reference` fixture:

    @pytest.mark.docker_root("registry.example:5000/app:v1", platform="linux/amd64", engine="28")
    def test_app(docker_root):              # docker_root is an emustore.Store
        assert docker_root.images()

    @pytest.mark.parametrize("docker_root", ["alpine:3.19"], indirect=True)
    def test_alpine(docker_root): ...

Each image is pulled once per session into a cache; every test gets its own copy under its
tmp_path, so tests may tag, remove or start a dockerd on it freely.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.api import PullOptions, Store, pull

MARKER = (
    "docker_root(reference, platform=None, engine=None): the image the docker_root fixture pulls "
    "(engine: the Docker version whose dialect is written, as pull --engine)"
)
Spec = str | tuple[str, str | None] | tuple[str, str | None, str | None]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


class _PullCache:
    """Session-wide: one pulled template root per (reference, platform, engine)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.roots: dict[tuple[str, str | None, str | None], Path] = {}

    def root_for(self, spec: Spec) -> Path:
        if isinstance(spec, str):
            spec = (spec, None)
        reference, platform, engine = spec if len(spec) == 3 else (*spec, None)
        key = (reference, platform, engine)
        if key not in self.roots:
            root = self.base / ("root%d" % len(self.roots))
            pull(reference, root, options=PullOptions(platform=platform, engine=engine))
            self.roots[key] = root
        return self.roots[key]


@pytest.fixture(scope="session")
def _emustore_pull_cache(tmp_path_factory: pytest.TempPathFactory) -> _PullCache:
    return _PullCache(tmp_path_factory.mktemp("emustore-pulls"))


@pytest.fixture
def docker_root_reference(request: pytest.FixtureRequest) -> Spec | None:
    """The image for docker_root from the marker: "name:tag", (reference, platform) or
    (reference, platform, engine).

    Override this fixture to compute the reference (e.g. from a registry fixture)."""
    marker = request.node.get_closest_marker("docker_root")
    if marker is None or not marker.args:
        return None
    return marker.args[0], marker.kwargs.get("platform"), marker.kwargs.get("engine")


@pytest.fixture
def docker_root(
    request: pytest.FixtureRequest,
    docker_root_reference: Spec | None,
    _emustore_pull_cache: _PullCache,
    tmp_path: Path,
) -> Iterator[Store]:
    """A private data root holding the pulled image, as an emustore.Store."""
    spec = getattr(request, "param", None) or docker_root_reference
    if spec is None:
        pytest.fail(
            "docker_root needs an image: @pytest.mark.docker_root(\"name:tag\"), an indirect "
            "parameter, or a docker_root_reference fixture",
            pytrace=False,
        )
    template = _emustore_pull_cache.root_for(spec)
    root = tmp_path / "docker-root"
    subprocess.run(["cp", "-a", "--", str(template), str(root)], check=True, capture_output=True)
    yield Store(root)
