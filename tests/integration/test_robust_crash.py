"""Crash safety: pulls killed with SIGKILL at random moments never leave an inconsistent root.

Each trial copies a root that already holds a base image, starts a pull of an image sharing that
base and adding several layers, waits for the phase it targets to begin (download: a staging
dir exists; extraction: a staged diff dir has files; registration: a new layerdb entry exists;
references: the image config is stored), then kills it after a short random delay. The phase
the kill really hit is read back from the root it left. Then: the root is consistent, a re-run completes the pull, and the
leftovers (scratch only) can be removed without breaking anything. SIGINT aborts cleanly.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.consistency import RootReport, check_root, remove_leftovers
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.faults import pull_process
from tests.support.figures import record
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry
TRIALS = 50


def _files_layer(tag: str, count: int) -> LayerBuilder:
    layer = LayerBuilder().dir(f"{tag}/")
    for i in range(count):
        layer.file(f"{tag}/file-{i:04d}", (f"{tag} {i}\n" * 20).encode())
    return layer


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image()
    app = base.copy()
    for n in range(4):
        app.layer(_files_layer(f"app{n}", 150), created_by=f"app layer {n}")
    big = base.copy().layer(LayerBuilder().file("big", random.Random(1).randbytes(512 << 10)), created_by="big")
    return {
        "base": base.push(registry.host, "crash/base", "v1"),
        "app": app.push(registry.host, "crash/app", "v1"),
        "big": big.push(registry.host, "crash/big", "v1"),
    }


def _run(reference: str, root: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = pull_process(reference, str(root))
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _phase(report: RootReport, root: Path, app: PushedImage) -> str:
    """Where the kill landed, judged from what it left behind."""
    if any(key.startswith(app.repository) for key in report.images):
        return "after references"
    if (root / "image/overlay2/imagedb/content/sha256" / app.image_id.split(":")[1]).exists():
        return "before references"
    layers = root / "image/overlay2/layerdb/sha256"
    if layers.is_dir() and len(list(layers.iterdir())) > 2:
        return "registration"
    staging = root / "tmp/emustore-staging"
    if staging.is_dir() and any(staging.iterdir()):
        return "download/extraction"
    return "before download"


def _entries(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except FileNotFoundError:
        return []


def _started(target: str, root: Path, app: PushedImage) -> bool:
    """Whether the phase `target` has begun in `root`."""
    staging = _entries(root / "tmp/emustore-staging")
    if target == "download":
        return bool(staging)
    if target == "extraction":
        return any(_entries(p / "diff") for p in staging if p.is_dir())
    if target == "registration":
        return len(_entries(root / "image/overlay2/layerdb/sha256")) > 2
    return (root / "image/overlay2/imagedb/content/sha256" / app.image_id.split(":")[1]).exists()


TARGETS = ("download", "extraction", "registration", "references")


def test_sigkill_at_random_points(images: dict[str, PushedImage], tmp_path: Path) -> None:
    seed_root = tmp_path / "seed"
    assert _run(images["base"].reference, seed_root).returncode == 0
    rng = random.Random(7)
    phases: Counter[str] = Counter()
    failures: list[tuple[int, list[str]]] = []
    figures = Counter(trials=0, faults_injected=0, inconsistent_roots=0, files_outside_root=0, leftovers_removed=0)
    for trial in range(TRIALS):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(seed_root, root, symlinks=True)
        around = sorted(os.listdir(tmp_path))
        proc = pull_process(images["app"].reference, str(root))
        target = TARGETS[trial % len(TARGETS)]
        while proc.poll() is None and not _started(target, root, images["app"]):
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.01))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            figures["faults_injected"] += 1
        proc.communicate(timeout=60)
        figures["trials"] += 1
        report = check_root(root)
        phases[_phase(report, root, images["app"])] += 1
        if not report.consistent:
            figures["inconsistent_roots"] += 1
            failures.append((trial, report.problems))
            continue
        rerun = _run(images["app"].reference, root)
        assert rerun.returncode == 0, (trial, rerun.stderr)
        after = check_root(root)
        assert after.consistent, (trial, after.problems)
        assert after.images[f"{images['app'].repository}:{images['app'].tag}"] == images["app"].image_id
        figures["leftovers_removed"] += len(after.leftovers)
        remove_leftovers(root)
        cleaned = check_root(root)
        assert cleaned.consistent and not cleaned.leftovers, (trial, cleaned.problems, cleaned.leftovers)
        figures["files_outside_root"] += len(set(os.listdir(tmp_path)) ^ set(around))
        shutil.rmtree(root)
    record(
        "crash safety (SIGKILL)",
        **figures,
        **{"phase " + name: count for name, count in sorted(phases.items())},
    )
    assert failures == []
    assert figures["files_outside_root"] == 0


def test_sigint_aborts_cleanly(images: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    """Ctrl-C in the middle of slow downloads: one line, exit 130, staging gone, root consistent."""
    proxy = FaultProxy(registry.host)
    try:
        proxy.inject(Fault("/blobs/" + images["big"].layer_digests[-1], "slow", after=0, pause=3))
        root = tmp_path / "root"
        assert _run(images["base"].reference, root).returncode == 0
        proc = pull_process(images["big"].reference.replace(registry.host, proxy.host), str(root))
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.rstrip().endswith("Pulling fs layer"):
                break
        time.sleep(0.5)  # the big layer's first 16 KiB came, the rest waits 3 s: still downloading
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proxy.stop()
    assert proc.returncode == 130
    assert err.splitlines() == ["emustore: interrupted; nothing half-written was published"]
    report = check_root(root)
    assert report.consistent, report.problems
    assert report.leftovers == []
    record("SIGINT abort", trials=1, faults_injected=1, inconsistent_roots=0, exit_code=proc.returncode)
