"""Registry mirrors for docker.io: a real docker-registry pull-through cache in front of another local registry."""

from __future__ import annotations

import json
import time
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.pull import PullOptions, pull
from emustore.reference import parse_reference
from emustore.registry.endpoints import Endpoint, endpoints
from emustore.registry.options import OptionsError, RegistryOptions, validate_mirror
from emustore.registry.retry import RetryPolicy
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer, free_port

pytestmark = pytest.mark.registry

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, budget=10.0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RegistryServer, PushedImage]]:
    """Plays Docker Hub: holds library/mirrored."""
    with RegistryServer() as hub:
        yield hub, busybox_image("docker", cmd=["sh"]).push(hub.host, "library/mirrored", "v1")


@pytest.fixture(scope="module")
def cache(upstream: tuple[RegistryServer, PushedImage]) -> Iterator[RegistryServer]:
    with RegistryServer(config_override={"proxy": {"remoteurl": upstream[0].url}}) as mirror:
        yield mirror


def _sources(root: Path, diff_id: str) -> list[str]:
    path = root / "image/overlay2/distribution/v2metadata-by-diffid" / diff_id.replace(":", "/")
    return [entry["SourceRepository"] for entry in json.loads(path.read_text())]


def test_docker_hub_image_comes_through_the_mirror(
    upstream: tuple[RegistryServer, PushedImage], cache: RegistryServer, tmp_path: Path
) -> None:
    image = upstream[1]
    options = RegistryOptions(mirrors=(f"http://{cache.host}",), retry=FAST, certs_dir=None)
    result = pull("mirrored:v1", tmp_path, PullOptions(registry=options))
    assert (result.image_id, result.manifest_digest) == (image.image_id, image.digest)
    references = json.loads((tmp_path / "image/overlay2/repositories.json").read_text())["Repositories"]
    assert references["mirrored"]["mirrored:v1"] == image.image_id
    # dockerd records the original repository, not the mirror's
    assert _sources(tmp_path, image.diff_ids[0]) == ["docker.io/library/mirrored"]
    cached = cache.workdir / "storage/docker/registry/v2/blobs/sha256" / image.layer_digests[0][7:9]
    # the pull went through the cache, which commits a proxied blob once it has sent it: wait for that
    deadline = time.monotonic() + 60
    while not (cached / image.layer_digests[0][7:] / "data").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (cached / image.layer_digests[0][7:] / "data").is_file()


def test_a_failing_mirror_falls_back_to_the_next(
    upstream: tuple[RegistryServer, PushedImage], cache: RegistryServer, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    empty = RegistryServer()  # a mirror that answers "manifest unknown"
    try:
        options = RegistryOptions(mirrors=(dead, empty.url, f"http://{cache.host}"), retry=FAST, certs_dir=None)
        assert pull("mirrored:v1", tmp_path, PullOptions(registry=options)).image_id == upstream[1].image_id
    finally:
        empty.stop()


def test_mirror_from_a_daemon_json_on_the_command_line(
    upstream: tuple[RegistryServer, PushedImage], cache: RegistryServer, tmp_path: Path
) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": [f"http://{cache.host}/"], "debug": True}))
    done = subprocess.run(
        [sys.executable, "-m", "emustore", "pull", "mirrored:v1", "--root", str(tmp_path / "root"), "--config", str(config)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "docker.io/library/mirrored:v1"


def test_endpoint_order() -> None:
    options = RegistryOptions(mirrors=("https://mirror.example", "http://127.0.0.1:5000"),
                              insecure_registries=("10.0.0.0/8", "insecure.example:5000", "127.0.0.0/8"))
    assert endpoints(parse_reference("nginx"), options) == [
        Endpoint("https://mirror.example", verify=True, mirror=True),
        Endpoint("http://127.0.0.1:5000", verify=False, mirror=True),
        Endpoint("https://registry-1.docker.io", verify=True),
    ]
    assert endpoints(parse_reference("insecure.example:5000/a/b"), options) == [
        Endpoint("https://insecure.example:5000", verify=False),
        Endpoint("http://insecure.example:5000", verify=False),
    ]
    assert endpoints(parse_reference("10.1.2.3:5000/a"), options)[0] == Endpoint("https://10.1.2.3:5000", verify=False)
    assert endpoints(parse_reference("ghcr.io/a/b"), options) == [Endpoint("https://ghcr.io", verify=True)]


@pytest.mark.parametrize("url", ["mirror.example", "ftp://mirror.example", "https://mirror.example/path", "https://"])
def test_invalid_mirrors(url: str) -> None:
    with pytest.raises(OptionsError, match="invalid mirror"):
        validate_mirror(url)
