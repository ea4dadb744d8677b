"""Faults from outside: a registry that is down, errors, resets, stalls or lies, and a disk that fills.

Every case starts from a root holding a base image, pulls an image on top of it through a
fault-injecting proxy (tests/support/faultproxy.py), and expects one clear line and a root exactly
as before (and fsck-clean), or, for transient faults the client retries, a complete pull.
Timeouts and retries are shortened through RegistryOptions so that stalls end in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emustore.errors import EmustoreError
from emustore.layers import expansion
from emustore.pull import PullOptions, pull
from emustore.registry.options import RegistryOptions
from emustore.registry.retry import RetryPolicy
from emustore.registry.stall import StallRule
from tests.integration.test_pull_cli import emustore, snapshot
from tests.support.consistency import check_root
from tests.support.faultproxy import Fault, FaultKind, FaultProxy
from tests.support.faults import gzip_bomb
from tests.support.figures import module_figures, record
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image, compress
from tests.support.pushclient import PushClient, sha256_digest
from tests.support.registry import RegistryServer, free_port
from tests.support.tarlayer import Header

pytestmark = pytest.mark.registry
FAST = RegistryOptions(timeout=2.0, retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.5, budget=20.0))
FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image()
    app = base.copy().layer(LayerBuilder().file("app/data", random.Random(2).randbytes(256 << 10)), created_by="app")
    return {"base": base.push(registry.host, "faults/base", "v1"), "app": app.push(registry.host, "faults/app", "v1")}


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.host)
    yield proxy
    proxy.stop()


def _injected(proxy: FaultProxy) -> int:
    return sum(1 for seen in proxy.requests_for("/v2/") if seen.fault is not None)


@pytest.fixture
def root(images: dict[str, PushedImage], tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    pull(images["base"].reference, root)
    yield root


def _expect_clean_failure(root: Path, attempt: Callable[[], object], expected: str) -> str:
    """Run `attempt`; it must fail with a one-line error containing `expected`, root unchanged."""
    before = snapshot(root)
    outside = set(os.listdir(root.parent))
    with pytest.raises(EmustoreError) as info:
        attempt()
    message = str(info.value)
    assert "\n" not in message and expected in message, message
    assert snapshot(root) == before
    report = check_root(root)
    FIGURES["trials"] += 1
    FIGURES["faults_injected"] += 1
    FIGURES["inconsistent_roots"] += not report.consistent or bool(report.leftovers)
    FIGURES["files_outside_root"] += len(set(os.listdir(root.parent)) ^ outside)
    assert report.consistent and not report.leftovers, (report.problems, report.leftovers)
    return message


def _through(proxy: FaultProxy, registry: RegistryServer, image: PushedImage) -> str:
    return image.reference.replace(registry.host, proxy.host)


def test_registry_down(images: dict[str, PushedImage], registry: RegistryServer, root: Path) -> None:
    reference = images["app"].reference.replace(registry.host, f"127.0.0.1:{free_port()}")
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "connect")


ALWAYS = 1 << 20  # a fault for every matching request
FAILING = {
    # case → (fault, words the error must contain)
    "5xx storm": (Fault("/v2/", "status", status=503, times=ALWAYS), "503"),
    "500 on blobs": (Fault("/blobs/", "status", status=500, times=ALWAYS), "500"),
    "reset before the body": (Fault("/blobs/", "reset", after=0, times=ALWAYS), "/blobs/sha256:"),
    "slow loris (headers, then silence)": (Fault("/blobs/", "stall", pause=30, times=ALWAYS), "timed out"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_transport_faults(case: str, images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    fault, words = FAILING[case]
    proxy.inject(fault)
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), words)
    assert _injected(proxy) > 0


def _completes(image: PushedImage, registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    result = pull(_through(proxy, registry, image), root, PullOptions(registry=FAST))
    assert result.image_id == image.image_id
    report = check_root(root)
    assert report.consistent and not report.leftovers, report.problems
    FIGURES["trials"] += 1
    FIGURES["faults_injected"] += _injected(proxy)


def test_mid_body_resets_are_resumed(images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    """Every blob answer is cut after 64 KiB; the client resumes with Range and completes the pull."""
    proxy.inject(Fault("/blobs/", "reset", after=64 << 10, times=ALWAYS))
    _completes(images["app"], registry, proxy, root)
    assert _injected(proxy) > 1


def test_transient_5xx_is_retried(images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    """The first request of every layer blob fails with 503; the retrying client completes the pull."""
    for digest in images["app"].layer_digests:
        proxy.inject(Fault("/blobs/" + digest, "status", status=503))
    _completes(images["app"], registry, proxy, root)


def _manifest(config: dict, layers: list[dict]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": config, "layers": layers}
    ).encode()


def _descriptor(data: bytes, media_type: str = "application/vnd.docker.container.image.v1+json", size: int | None = None) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data) if size is None else size}


MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def test_manifest_over_the_size_limit(images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    huge = b'{"schemaVersion": 2, "pad": "' + b"x" * (5 << 20) + b'"}'
    proxy.inject(Fault("/manifests/", "body", body=huge, content_type=MANIFEST_TYPE, times=ALWAYS))
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "limit")


def test_config_declared_over_the_size_limit(images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    layer = _descriptor(b"layer", "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest = _manifest(_descriptor(b"{}", size=9 << 20), [layer])
    proxy.inject(Fault("/manifests/", "body", body=manifest, content_type=MANIFEST_TYPE, times=ALWAYS))
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "limit")


def test_config_body_over_the_size_limit(images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path) -> None:
    big = b"{" + b" " * (9 << 20) + b"}"
    proxy.inject(Fault("/blobs/" + images["app"].image_id, "body", body=big, times=ALWAYS))  # the config blob
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "limit")


def _push_raw(registry: RegistryServer, name: str, config: bytes, layers: list[bytes]) -> str:
    with PushClient(registry.host) as client:
        for blob in [config, *layers]:
            client.put_blob(name, blob)
        manifest = _manifest(
            _descriptor(config), [_descriptor(b, "application/vnd.docker.image.rootfs.diff.tar.gzip") for b in layers]
        )
        client.put_manifest(name, "v1", "application/vnd.docker.distribution.manifest.v2+json", manifest)
    return f"{registry.host}/{name}:v1"


def test_config_that_is_not_json(registry: RegistryServer, root: Path) -> None:
    reference = _push_raw(registry, "faults/notjson", b"this is { not json", [])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "not JSON")


def test_diff_id_that_does_not_match_the_config(registry: RegistryServer, root: Path) -> None:
    real = LayerBuilder().file("real", b"real\n").build()
    claimed = LayerBuilder().file("claimed", b"claimed\n").build()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha256_digest(claimed)]}}).encode()
    reference = _push_raw(registry, "faults/diffid", config, [compress(real, "gzip")])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "don't match image configuration")


def _bomb_config(size: int) -> bytes:
    """An image config whose one diff id is that of gzip_bomb(size)'s tar."""
    tar_hash = hashlib.sha256(Header(b"bomb", size=size).encode())
    for _ in range(size >> 20):
        tar_hash.update(bytes(1 << 20))
    tar_hash.update(bytes(1024))
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + tar_hash.hexdigest()]}}).encode()


def _expands_beyond(message: str, blob: bytes, ratio: int = 100) -> int:
    """The compressed bytes received when the expansion limit (`ratio`, floor 1 MiB) refused the layer."""
    found = re.search(r"expands beyond (\d+) bytes from the (\d+) compressed bytes received", message)
    assert found is not None, message
    allowed, received = int(found.group(1)), int(found.group(2))
    assert received <= len(blob) and allowed == max(1 << 20, ratio * received), message
    return received


def test_gzip_bomb_is_refused_by_pull(registry: RegistryServer, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB of zeros in a 64 KiB blob, pulled with --max-expansion 100 (floor lowered to 1 MiB)."""
    size = 64 << 20
    blob = gzip_bomb(size)
    reference = _push_raw(registry, "faults/bomb", _bomb_config(size), [blob])
    monkeypatch.setattr(expansion, "MIN_EXPANSION_LIMIT", 1 << 20)
    message = _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(max_expansion=100)), "expands beyond")
    _expands_beyond(message, blob)


def test_a_bomb_claiming_a_huge_size_is_still_refused(
    registry: RegistryServer, proxy: FaultProxy, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest says the 64 KiB bomb is 10^12 bytes: the limit follows the bytes that came."""
    size = 64 << 20
    blob, config = gzip_bomb(size), _bomb_config(size)
    reference = _push_raw(registry, "faults/liar", config, [blob]).replace(registry.host, proxy.host)
    lying = _manifest(_descriptor(config), [_descriptor(blob, "application/vnd.docker.image.rootfs.diff.tar.gzip", 10**12)])
    proxy.inject(Fault("/manifests/", "body", body=lying, content_type=MANIFEST_TYPE, times=ALWAYS))
    monkeypatch.setattr(expansion, "MIN_EXPANSION_LIMIT", 1 << 20)
    message = _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(max_expansion=100, registry=FAST)), "expands")
    record("bomb with a lying size", declared=10**12, blob=len(blob), received=_expands_beyond(message, blob))


def test_a_refused_layer_stops_its_download(
    registry: RegistryServer, proxy: FaultProxy, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bomb followed by 48 MiB: once refused, the layer reads at most 1 MiB more to tell a corrupt
    download (pipeline.VERIFY_TAIL), so the proxy gets to send a fraction of the blob, not all of it.
    (Ratio 10: the bomb's first MiB of blob, read at once, must not already allow its 64 MiB.)"""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    tail = z.compress(random.Random(7).randbytes(48 << 20)) + z.flush()
    blob = gzip_bomb(64 << 20) + tail
    reference = _push_raw(registry, "faults/bombtail", _bomb_config(64 << 20), [blob]).replace(registry.host, proxy.host)
    monkeypatch.setattr(expansion, "MIN_EXPANSION_LIMIT", 1 << 20)
    message = _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(max_expansion=10, registry=FAST)), "expands")
    _expands_beyond(message, blob, ratio=10)
    sent = sum(seen.body_bytes for seen in proxy.requests_for("/blobs/" + sha256_digest(blob)))
    record("refused layer stops its download", blob=len(blob), sent=sent)
    assert sent < len(blob) // 2, (sent, len(blob))


ENDLESS_CAP = 256 << 20  # the proxy's own bound: a client reading every byte would take all of it
BUFFERED = 16 << 20  # what sockets hold between the proxy and the client: sent, never read


def _challenge(proxy: FaultProxy) -> Fault:
    """A 401 on the manifest sending the client to the proxy's own /token."""
    realm = f'Bearer realm="http://{proxy.host}/token",service="faults"'
    return Fault("/manifests/", "status", status=401, headers={"WWW-Authenticate": realm})


ENDLESS = {
    # case → (faults given the proxy and the image, the endless path, the client's limit, words of the error)
    "token answer": (
        lambda proxy, image: [_challenge(proxy), Fault("/token", "endless", status=200, after=ENDLESS_CAP)],
        "/token", 1 << 20, "token answer",
    ),
    "manifest": (
        lambda proxy, image: [Fault("/manifests/", "endless", status=200, content_type=MANIFEST_TYPE, after=ENDLESS_CAP)],
        "/manifests/", 4 << 20, "manifest for",
    ),
    "config blob": (
        lambda proxy, image: [Fault("/blobs/" + image.image_id, "endless", status=200, after=ENDLESS_CAP)],
        "/blobs/", 8 << 20, "limit",
    ),
    "error body": (
        lambda proxy, image: [Fault("/manifests/", "endless", status=404, content_type="application/json", after=ENDLESS_CAP)],
        "/manifests/", 64 << 10, "not found",
    ),
}


@pytest.mark.parametrize("case", sorted(ENDLESS))
def test_endless_bodies_stop_at_their_limit(
    case: str, images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    faults, path, limit, words = ENDLESS[case]
    for fault in faults(proxy, images["app"]):
        proxy.inject(fault)
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), words)
    sent = sum(seen.body_bytes for seen in proxy.requests_for(path) if seen.fault == "endless")
    record(f"endless {case}", limit=limit, sent=sent, cap=ENDLESS_CAP)
    assert 0 < sent <= limit + BUFFERED, sent


def test_redirect_bodies_are_never_read(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """The token server redirects with an endless body: the client follows the Location at once."""
    proxy.inject(_challenge(proxy))
    proxy.inject(Fault("/token", "endless", status=302, headers={"Location": f"http://{proxy.host}/issued"}, after=ENDLESS_CAP))
    proxy.inject(Fault("/issued", "body", body=b'{"token": "issued"}', content_type="application/json"))
    _completes(images["app"], registry, proxy, root)
    sent = proxy.requests_for("/token")[0].body_bytes
    record("endless redirect body", sent=sent, cap=ENDLESS_CAP)
    assert sent <= BUFFERED and [s.status for s in proxy.requests_for("/issued")] == [200]


STALLING = RegistryOptions(timeout=2.0, retry=FAST.retry, stall=StallRule(1024, 0.5))
DRIPPING = {
    # case → the path a body drips from, one byte every 50 ms (20 bytes a second, under 1024 in 0.5 s)
    "manifest": lambda image: "/manifests/",
    "config blob": lambda image: "/blobs/" + image.image_id,
    "layer blob": lambda image: "/blobs/" + image.layer_digests[-1],
}


# a body drips, or headers that never end (each byte well inside the 2 s per-read timeout, which alone
# would let them go on for days)
DRIPS = [("drip", case) for case in sorted(DRIPPING)] + [("drip-headers", "manifest"), ("drip-headers", "layer blob")]


@pytest.mark.parametrize("kind, case", DRIPS)
def test_a_dripping_answer_ends_on_the_stall_rule(
    kind: FaultKind, case: str, images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    path = DRIPPING[case](images["app"])
    proxy.inject(Fault(path, kind, pause=0.05, after=400, times=ALWAYS))
    reference = _through(proxy, registry, images["app"])
    message = _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=STALLING)), "transfer stalled")
    assert path in message and "less than the stall limit of 1024 bytes per 0.5s" in message, message
    drips = [s for s in proxy.requests_for(path) if s.fault == kind]
    received = re.search(r"stalled: (\d+) bytes", message)
    assert received is not None
    record(f"{kind} {case}", requests=len(drips), bytes_in_window=int(received.group(1)), retried=len(drips) - 1)
    assert len(drips) == 1  # a stall is not retried


def test_the_stall_limit_on_the_command_line(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """--stall-limit, else $EMUSTORE_STALL_LIMIT: a dripping layer ends the pull with one line, exit 1."""
    proxy.inject(Fault("/blobs/" + images["app"].layer_digests[-1], "drip", pause=0.05, after=400, times=ALWAYS))
    reference = _through(proxy, registry, images["app"])
    before = snapshot(root)
    command = [sys.executable, "-m", "emustore", "pull", reference, "--root", str(root)]
    runs = {
        "flag": subprocess.run(command + ["--stall-limit", "1024/0.5"], capture_output=True, text=True, timeout=120),
        "env": subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env=os.environ | {"EMUSTORE_STALL_LIMIT": "1024/0.5"}),
        "bad": subprocess.run(command + ["--stall-limit", "fast"], capture_output=True, text=True, timeout=120),
    }
    for case, done in runs.items():
        assert done.returncode == 1 and done.stderr.startswith("emustore: "), (case, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (case, done.stderr)
        assert ("invalid stall limit 'fast'" if case == "bad" else "transfer stalled") in done.stderr, (case, done.stderr)
    assert snapshot(root) == before
    FIGURES["trials"] += len(runs)


def test_dripping_headers_on_the_command_line(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """`pull --stall-limit 1024/0.5` ends on trickled manifest headers with one line, exit 1, root as
    before; with the rule off the same pull against the (now undisturbed) registry completes."""
    proxy.inject(Fault("/manifests/", "drip-headers", pause=0.05, after=4000))
    command = [sys.executable, "-m", "emustore", "pull", _through(proxy, registry, images["app"]), "--root", str(root)]
    before = snapshot(root)
    stalled = subprocess.run(command + ["--stall-limit", "1024/0.5"], capture_output=True, text=True, timeout=120)
    assert stalled.returncode == 1 and stalled.stderr.startswith("emustore: "), stalled.stderr
    assert len(stalled.stderr.strip().splitlines()) == 1 and "transfer stalled" in stalled.stderr, stalled.stderr
    assert snapshot(root) == before
    off = subprocess.run(command + ["--stall-limit", "off"], capture_output=True, text=True, timeout=120)
    assert off.returncode == 0, off.stderr
    assert check_root(root).consistent and snapshot(root) != before
    FIGURES["trials"] += 2


def test_late_headers_within_the_stall_window_pass(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """A registry slow to start answering (headers 0.2 s late, then normal) is not a stall under 1024/2."""
    for path in ("/manifests/", "/blobs/"):
        proxy.inject(Fault(path, "late", pause=0.2, times=ALWAYS))
    patient = RegistryOptions(timeout=2.0, retry=FAST.retry, stall=StallRule(1024, 2.0))
    result = pull(_through(proxy, registry, images["app"]), root, PullOptions(registry=patient))
    assert result.image_id == images["app"].image_id
    late = [s for s in proxy.requests_for("/v2/") if s.fault == "late"]
    assert late and all(s.status == 200 for s in late), late


def test_connections_are_kept_alive_under_the_stall_rule(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """The watched transport pools connections: a pull sends several requests over one connection."""
    pull(_through(proxy, registry, images["app"]), root, PullOptions(registry=FAST))
    seen = proxy.requests_for("/v2/")
    connections = len({s.client_port for s in seen})
    record("keep-alive under the stall rule", requests=len(seen), connections=connections)
    assert 0 < connections < len(seen), seen


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_deep_json_from_the_registry_is_one_line(
    images: dict[str, PushedImage], registry: RegistryServer, proxy: FaultProxy, root: Path
) -> None:
    """A manifest, then a config, nested 100000 deep: one line each, no RecursionError."""
    deep_manifest = b'{"schemaVersion": 2, "mediaType": "%s", "layers": %s}' % (MANIFEST_TYPE.encode(), DEEP)
    proxy.inject(Fault("/manifests/", "body", body=deep_manifest, content_type=MANIFEST_TYPE, times=ALWAYS))
    reference = _through(proxy, registry, images["app"])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "nested deeper than 256 levels")
    deep_config = b'{"os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "history": %s}' % DEEP
    reference = _push_raw(registry, "faults/deepconfig", deep_config, [])
    _expect_clean_failure(root, lambda: pull(reference, root, PullOptions(registry=FAST)), "nested deeper than 256 levels")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (we are root in CI); unmounted at teardown."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_fills_mid_layer(images: dict[str, PushedImage], registry: RegistryServer, small_disk: Path) -> None:
    """busybox fits in 4 MiB; a 3 MiB random layer on top does not: one line, root as before."""
    root = small_disk / "root"
    assert emustore("pull", images["base"].reference, "--root", str(root)).returncode == 0
    big = busybox_image().layer(LayerBuilder().file("big", random.Random(4).randbytes(3 << 20)), created_by="big")
    pushed = big.push(registry.host, "faults/big", "v1")
    before = snapshot(root)
    result = emustore("pull", pushed.reference, "--root", str(root))
    assert result.returncode != 0
    assert result.stderr.startswith("emustore: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "No space left on device" in result.stderr
    assert snapshot(root) == before
    report = check_root(root)
    FIGURES["trials"] += 1
    FIGURES["faults_injected"] += 1
    FIGURES["inconsistent_roots"] += not report.consistent or bool(report.leftovers)
    assert report.consistent and not report.leftovers, (report.problems, report.leftovers)


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["inconsistent_roots"] == 0 and figures["files_outside_root"] == 0


_figures = module_figures("external faults", FIGURES, _check_figures)
