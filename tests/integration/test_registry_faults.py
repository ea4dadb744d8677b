"""Retries and resumption against a real docker-registry behind the tests' fault-injecting proxy."""

from __future__ import annotations

import hashlib
import json
import time
from types import SimpleNamespace
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.errors import DigestMismatch, RegistryError
from emustore.pull import PullOptions, pull
from emustore.registry import client as client_module
from emustore.registry.options import RegistryOptions
from emustore.registry.retry import RetryPolicy
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, budget=30.0)
OPTIONS = RegistryOptions(retry=FAST, certs_dir=None)
PAYLOAD_SIZE = 400 << 10


def _payload() -> bytes:
    """Deterministic bytes that gzip cannot shrink much, so the layer blob is ~400 KiB."""
    out = bytearray()
    counter = 0
    while len(out) < PAYLOAD_SIZE:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:PAYLOAD_SIZE])


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> tuple[PushedImage, int]:
    builder = ImageBuilder().layer(LayerBuilder().file("data.bin", _payload()), created_by="ADD data.bin /")
    pushed = builder.push(registry.host, "faults/big", "v1")
    return pushed, len(builder.layers[0].blob)


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    server = FaultProxy(registry.host)
    yield server
    server.stop()


def _pull(proxy: FaultProxy, root: Path, options: RegistryOptions = OPTIONS) -> None:
    pull(f"{proxy.host}/faults/big:v1", root, PullOptions(registry=options))


def _layer(image: tuple[PushedImage, int]) -> str:
    return image[0].layer_digests[0]


def test_cut_mid_layer_resumes_from_the_byte_where_it_stopped(
    proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path
) -> None:
    digest, size = _layer(image), image[1]
    proxy.inject(Fault(digest, "cut", after=100_000))
    _pull(proxy, tmp_path / "root")
    first, second = proxy.requests_for(f"/blobs/{digest}")
    assert (first.range, first.body_bytes) == (None, 100_000)
    assert (second.range, second.status) == ("bytes=100000-", 206)
    assert second.body_bytes == size - 100_000  # only the bytes not yet received
    diff = (tmp_path / "root/image/overlay2/distribution/diffid-by-digest" / digest.replace(":", "/")).read_text()
    assert diff == image[0].diff_ids[0]


def test_reset_mid_layer_resumes_and_verifies(proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path) -> None:
    digest, size = _layer(image), image[1]
    proxy.inject(Fault(digest, "reset", after=150_000))
    _pull(proxy, tmp_path / "root")
    first, second = proxy.requests_for(f"/blobs/{digest}")
    assert first.fault == "reset" and second.status == 206
    offset = int(second.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset <= 150_000 and offset + second.body_bytes == size


def test_slow_body_times_out_and_resumes(proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path) -> None:
    digest, size = _layer(image), image[1]
    proxy.inject(Fault(digest, "slow", after=50_000, pause=4.0))
    _pull(proxy, tmp_path / "root", RegistryOptions(retry=FAST, certs_dir=None, timeout=1.0))
    stalled, resumed = sorted(proxy.requests_for(f"/blobs/{digest}"), key=lambda s: s.range is not None)
    assert stalled.fault == "slow" and stalled.range is None
    assert resumed.range == "bytes=65536-"  # everything up to the stall (the 16 KiB write holding byte 50000)
    assert resumed.body_bytes == size - 65536


def test_server_errors_are_retried(proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path) -> None:
    proxy.inject(Fault("/manifests/v1", "status", status=500, times=2))
    proxy.inject(Fault(f"/blobs/{_layer(image)}", "status", status=502))
    _pull(proxy, tmp_path / "root")
    assert [s.status for s in proxy.requests_for("/manifests/v1")] == [500, 500, 200]
    assert [s.status for s in proxy.requests_for(f"/blobs/{_layer(image)}")] == [502, 200]


def test_persistent_server_errors_give_up_after_the_bounded_attempts(
    proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path
) -> None:
    proxy.inject(Fault("/manifests/v1", "status", status=503, times=100))
    with pytest.raises(RegistryError) as info:
        _pull(proxy, tmp_path / "root")
    assert len(proxy.requests_for("/manifests/v1")) == FAST.attempts
    assert str(info.value) == (
        f'Get "http://{proxy.host}/v2/faults/big/manifests/v1": registry answered HTTP 503 Service Unavailable: '
        "unknown: injected 503"
    )
    assert not (tmp_path / "root/image/overlay2/imagedb").exists()


def test_429_waits_as_long_as_retry_after_says(
    proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    recording = SimpleNamespace(sleep=lambda s: (slept.append(s), time.sleep(s)))
    monkeypatch.setattr(client_module, "time", recording)  # the client's own sleeps only
    proxy.inject(Fault("/manifests/v1", "status", status=429, retry_after="1"))
    _pull(proxy, tmp_path / "root")
    assert [s.status for s in proxy.requests_for("/manifests/v1")] == [429, 200]
    assert slept == [1.0]


def test_429_longer_than_the_budget_fails_at_once(
    proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path
) -> None:
    proxy.inject(Fault("/manifests/v1", "status", status=429, retry_after="3600"))
    with pytest.raises(RegistryError, match="HTTP 429 Too Many Requests"):
        _pull(proxy, tmp_path / "root")
    assert len(proxy.requests_for("/manifests/v1")) == 1


def test_wrong_bytes_fail_on_the_digest_without_retrying(
    proxy: FaultProxy, image: tuple[PushedImage, int], tmp_path: Path
) -> None:
    digest = _layer(image)
    proxy.inject(Fault(digest, "corrupt", after=200_000, times=100))
    with pytest.raises(DigestMismatch, match=f"verification failed for digest {digest}"):
        _pull(proxy, tmp_path / "root")
    assert len(proxy.requests_for(f"/blobs/{digest}")) == 1
    repositories = tmp_path / "root/image/overlay2/repositories.json"
    assert not repositories.exists() or json.loads(repositories.read_text()) == {"Repositories": {}}
