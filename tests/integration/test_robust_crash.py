"""Crash safety: pulls and loads killed with SIGKILL at random moments never leave an inconsistent
root, and the next run cleans up after them.

Each trial copies a root that already holds a base image, starts a pull (or a load, of an archive
by path or from stdin) of an image sharing that base and adding several layers, waits for the
phase it targets to begin (download: its staging set holds something; extraction: a staged diff
dir has files; registration: a new layerdb entry exists; references: the image config is stored),
then kills it after a short random delay. The phase the kill really hit is read back from the root
it left. Then: the root is consistent, a re-run completes the work, and afterwards `emustore fsck`
finds nothing, not even leftovers, without --repair. SIGINT aborts cleanly; `fsck --repair` run
while a pull downloads leaves that pull's staging alone.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emustore.save import save_to_path
from tests.support.consistency import RootReport, check_root
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.faults import pull_process
from tests.support.figures import record
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry
KILLS = 50  # random kill points wanted, pulls and loads mixed
MAX_TRIALS = 90  # some writers finish before their kill comes


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


def _command(kind: str, images: dict[str, PushedImage], archive: Path, root: Path) -> subprocess.Popen[str]:
    """The writer a trial kills: a pull, a load of the archive by path, or a load from stdin."""
    if kind == "pull":
        return pull_process(images["app"].reference, str(root))
    cli = [sys.executable, "-m", "emustore", "load", "--root", str(root)]
    if kind == "load":
        return subprocess.Popen(cli + ["-i", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with archive.open("rb") as stdin:
        return subprocess.Popen(cli, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(proc: subprocess.Popen[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _entries(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _staged(root: Path) -> list[Path]:
    """What the writers' staging sets hold (layer dirs, tar-splits, write-sets, a spooled archive)."""
    return [entry for staging_set in _entries(root / "tmp/emustore-staging") for entry in _entries(staging_set)]


def _phase(report: RootReport, root: Path, app: PushedImage) -> str:
    """Where the kill landed, judged from what it left behind."""
    if any(key.startswith(app.repository) for key in report.images):
        return "after references"
    if (root / "image/overlay2/imagedb/content/sha256" / app.image_id.split(":")[1]).exists():
        return "before references"
    layers = root / "image/overlay2/layerdb/sha256"
    if layers.is_dir() and len(list(layers.iterdir())) > 2:
        return "registration"
    if _staged(root):
        return "download/extraction"
    return "before download"


def _started(target: str, root: Path, app: PushedImage) -> bool:
    """Whether the phase `target` has begun in `root`."""
    if target == "download":
        return bool(_staged(root))
    if target == "extraction":
        return any(_entries(p / "diff") for p in _staged(root))
    if target == "registration":
        return len(_entries(root / "image/overlay2/layerdb/sha256")) > 2
    return (root / "image/overlay2/imagedb/content/sha256" / app.image_id.split(":")[1]).exists()


def _leftover_kind(rel: Path) -> str:
    if rel.parts[0] == "tmp":
        return "staging"
    if rel.parts[0] == "overlay2":
        return "uncommitted layer dirs and links"
    return "temp files" if rel.name.startswith(".tmp-") else str(rel)


TARGETS = ("download", "extraction", "registration", "references")
KINDS = ("pull", "load", "pull", "load-stdin")


@pytest.fixture(scope="module")
def seeded(images: dict[str, PushedImage], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A root holding the base image, and a `docker save` archive of the app image."""
    base = tmp_path_factory.mktemp("crash-seed")
    assert _run(pull_process(images["base"].reference, str(base / "seed"))).returncode == 0
    assert _run(pull_process(images["app"].reference, str(base / "full"))).returncode == 0
    save_to_path(base / "full", [images["app"].reference], base / "app.tar")
    return base / "seed", base / "app.tar"


def test_sigkill_at_random_points_then_rerun_leaves_fsck_clean(
    images: dict[str, PushedImage], seeded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each writer killed at a random point, then run again: the root is consistent after the kill,
    and after the re-run `emustore fsck` finds nothing at all, leftovers included (no --repair):
    the re-run removed what the dead writer left."""
    seed_root, archive = seeded
    app = images["app"]
    rng = random.Random(7)
    phases: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    left: Counter[str] = Counter()
    failures: list[tuple[int, str, list[str]]] = []
    figures = Counter(
        trials=0, kills=0, inconsistent=0, leftovers_after_kill=0, leftovers_after_rerun=0, files_outside_root=0
    )
    trial = 0
    while figures["kills"] < KILLS and trial < MAX_TRIALS:
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(seed_root, root, symlinks=True)
        around = sorted(os.listdir(tmp_path))
        kind = KINDS[trial % len(KINDS)]
        target = TARGETS[(trial // len(KINDS)) % len(TARGETS)]
        proc = _command(kind, images, archive, root)
        while proc.poll() is None and not _started(target, root, app):
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.01))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            figures["kills"] += 1
            kinds[kind] += 1
        proc.communicate(timeout=60)
        trial += 1
        figures["trials"] += 1
        report = check_root(root)
        phases[_phase(report, root, app)] += 1
        figures["leftovers_after_kill"] += len(report.leftovers)
        left.update(_leftover_kind(path.relative_to(root)) for path in report.leftovers)
        if not report.consistent:
            figures["inconsistent"] += 1
            failures.append((trial, kind + " killed", report.problems))
            continue
        rerun = _run(_command(kind, images, archive, root))
        assert rerun.returncode == 0, (trial, kind, rerun.stderr)
        after = check_root(root)
        figures["leftovers_after_rerun"] += len(after.leftovers)
        if after.problems or after.leftovers:
            failures.append((trial, kind + " re-run", after.problems + [str(p) for p in after.leftovers]))
        assert after.images[f"{app.repository}:{app.tag}"] == app.image_id
        figures["files_outside_root"] += len(set(os.listdir(tmp_path)) ^ set(around))
        shutil.rmtree(root)
    record(
        "crash safety (SIGKILL, re-run, fsck without --repair)",
        **figures,
        **{"killed " + name: count for name, count in sorted(kinds.items())},
        **{"phase " + name: count for name, count in sorted(phases.items())},
        **{"left by kills: " + name: count for name, count in sorted(left.items())},
    )
    assert failures == []
    assert figures["kills"] >= KILLS and figures["leftovers_after_rerun"] == 0 and figures["files_outside_root"] == 0


@contextmanager
def _downloading(images: dict[str, PushedImage], registry: RegistryServer, root: Path) -> Iterator[subprocess.Popen[str]]:
    """A pull into `root` (holding the base image) in the middle of a slow download: the big
    layer's first 16 KiB came, the rest waits 3 s."""
    proxy = FaultProxy(registry.host)
    try:
        proxy.inject(Fault("/blobs/" + images["big"].layer_digests[-1], "slow", after=0, pause=3))
        assert _run(pull_process(images["base"].reference, str(root))).returncode == 0
        proc = pull_process(images["big"].reference.replace(registry.host, proxy.host), str(root))
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.rstrip().endswith("Pulling fs layer"):
                break
        time.sleep(0.5)
        yield proc
    finally:
        proxy.stop()


def test_sigint_aborts_cleanly(images: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    """Ctrl-C in the middle of slow downloads: one line, exit 130, staging gone, root consistent."""
    root = tmp_path / "root"
    with _downloading(images, registry, root) as proc:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines() == ["emustore: interrupted; nothing half-written was published"]
    report = check_root(root)
    assert report.consistent, report.problems
    assert report.leftovers == []
    record("SIGINT abort", trials=1, faults_injected=1, inconsistent_roots=0, exit_code=proc.returncode)


def test_fsck_repair_leaves_a_running_pull_alone(
    images: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    """`fsck --repair` while a pull downloads (its layer staged, its blob still coming): nothing of
    the pull is removed, the pull completes, the root is clean."""
    root = tmp_path / "root"
    with _downloading(images, registry, root) as proc:
        staged = sorted(_staged(root))
        repaired = subprocess.run(
            [sys.executable, "-m", "emustore", "fsck", "--repair", "--root", str(root)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        still = sorted(_staged(root))
        pulled = _run(proc)
    assert staged and still == staged
    assert repaired.returncode == 0 and repaired.stdout == "", repaired.stdout + repaired.stderr
    assert pulled.returncode == 0, pulled.stderr
    after = check_root(root)
    assert after.consistent and after.leftovers == [], (after.problems, after.leftovers)
    record("fsck --repair during a pull", trials=1, staged_removed=len(set(staged) - set(still)), leftovers_after=0)
