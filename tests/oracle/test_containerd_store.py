"""`--store containerd` judged by containerd itself (1.6.20, 1.7.24, 2.1.9; tests/support/containerd.py).

Fidelity: the factory suite pulled by `ctr images pull` (unpack, overlayfs) and by emustore into
another root must compare equal (tests/support/containerdcompare.py: both bbolt files dumped with
times and snapshot numbers mapped, and the files). Adoption: containerd started on emustore's root
lists, checks (complete, unpacked), runs, garbage-collects exactly one image's blobs and
snapshots on `images rm --sync`, and reuses the snapshots on a later pull. Robustness: a hostile
layer stays inside, SIGKILL at any point of a pull leaves a root containerd opens with the earlier
image intact, and concurrent pulls are safe.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emustore.api import PullOptions
from emustore.errors import StoreError
from emustore.pull import pull
from emustore.registry.options import RegistryOptions
from emustore.stores.containerd.layout import ContainerdRoot
from tests.support.canary import changes, snapshot
from tests.support.containerd import CONTAINERD_VERSIONS, Containerd
from tests.support.containerdcompare import diff_roots, snapshot_chains
from tests.support.figures import record
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle]

FIDELITY_VERSIONS = ("1.6", "2.1")
KILL_TRIALS = 6


def _options(registry: RegistryServer, version: str, **kw: object) -> PullOptions:
    return PullOptions(
        registry=RegistryOptions(insecure_registries=(registry.host,)),
        store="containerd", engine="containerd-" + version, **kw,  # type: ignore[arg-type]
    )


def _emustore_cli(root: Path, reference: str, registry: RegistryServer, version: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "emustore", "pull", "-q", reference, "--store", "containerd", "--root", str(root),
         "--engine", "containerd-" + version, "--insecure-registry", registry.host],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _images(daemon: Containerd) -> set[str]:
    return {line.split()[0] for line in daemon.ctr("images", "ls").splitlines()[1:] if line.strip()}


def _check(daemon: Containerd) -> dict[str, str]:
    """`ctr images check`: name → "STATUS UNPACKED"."""
    rows = {}
    for line in daemon.ctr("images", "check").splitlines()[1:]:
        fields = line.split()
        if fields:
            rows[fields[0]] = "%s %s" % (fields[3], fields[-1])
    return rows


def _blobs(root: Path) -> set[str]:
    blobs = ContainerdRoot(root).blobs
    return set(os.listdir(blobs)) if blobs.exists() else set()


@pytest.fixture(scope="module", params=FIDELITY_VERSIONS)
def fidelity_roots(
    request: pytest.FixtureRequest, factory_suite: dict[str, PushedImage], registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path, Path]:
    """(version, root containerd pulled the suite into, root emustore pulled it into)."""
    version: str = request.param
    base = tmp_path_factory.mktemp("fidelity-" + version)
    with Containerd(version, base / "containerd") as daemon:
        for image in factory_suite.values():
            daemon.ctr("images", "pull", "--plain-http", image.reference)
    ours = base / "emustore"
    for image in factory_suite.values():
        pull(image.reference, ours, _options(registry, version))
    return version, daemon.root, ours


def test_fidelity_equals_ctr_pull(fidelity_roots: tuple[str, Path, Path], factory_suite: dict[str, PushedImage]) -> None:
    version, theirs, ours = fidelity_roots
    differences = diff_roots(theirs, ours)
    record("test_fidelity_equals_ctr_pull[%s]" % version, images=len(factory_suite), differences=len(differences))
    assert differences == [], "\n".join(differences[:40])


@pytest.mark.parametrize("version", CONTAINERD_VERSIONS)
def test_adopted_by_containerd(
    version: str, factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    names = ("whiteouts", "modes_owners", "shared_base")
    for name in names:
        pull(factory_suite[name].reference, root, _options(registry, version))
    snapshots_before = snapshot_chains(root)
    with Containerd(version, root) as daemon:
        assert _images(daemon) == {factory_suite[name].reference for name in names}
        assert set(_check(daemon).values()) == {"complete true"}, _check(daemon)
        listing = daemon.ctr("run", "--rm", factory_suite["whiteouts"].reference, "t-" + version, "ls", "-a", "/w")
        assert listing.split() == sorted(listing.split()) and listing.strip(), listing
        # the extra layer of shared_base is its own: rm --sync collects it and nothing else
        blobs_before = _blobs(root)
        daemon.ctr("images", "rm", "--sync", factory_suite["shared_base"].reference)
        gone = blobs_before - _blobs(root)
        expected = {d.split(":")[1] for d in _own_blobs(factory_suite, "shared_base", ("modes_owners", "whiteouts"))}
        assert gone == expected
        assert len(snapshot_chains(root)) == len(snapshots_before) - 1
        # containerd's own pull of it reuses every snapshot but the top one
        daemon.ctr("images", "pull", "--plain-http", factory_suite["shared_base"].reference)
        after = snapshot_chains(root)
        assert len(after) == len(snapshots_before)
        assert set(after.values()) == set(snapshots_before.values())
        assert _check(daemon)[factory_suite["shared_base"].reference] == "complete true"


def _own_blobs(suite: dict[str, PushedImage], name: str, others: tuple[str, ...]) -> set[str]:
    """Blobs (manifest, config, layers) of `name` that no image of `others` uses."""
    def blobs(image: PushedImage) -> set[str]:
        found = set(image.layer_digests) | {image.image_id}
        found.add(image.digest)
        return found

    return blobs(suite[name]) - set().union(*(blobs(suite[other]) for other in others))


def test_hostile_layer_stays_inside(
    hostile_image: PushedImage, module_canary: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    before = snapshot(module_canary.parent)
    root = tmp_path / "root"
    outcome = "pulled"
    try:
        pull(hostile_image.reference, root, _options(registry, "2.1"))
    except StoreError as error:
        outcome = str(error)
    outside = changes(before, snapshot(module_canary.parent))
    record("test_hostile_layer_stays_inside", cases=1, outside_changes=len(outside))
    assert outside == [], outcome
    with Containerd("2.1", root) as daemon:
        assert _check(daemon)[hostile_image.reference] == "complete true"


def test_sigkill_leaves_a_store_containerd_opens(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    rng = random.Random(17)
    first, second = factory_suite["modes_owners"], factory_suite["shared_base"]
    killed = survived = 0
    for trial in range(KILL_TRIALS):
        version = FIDELITY_VERSIONS[trial % 2]
        root = tmp_path / ("t%d" % trial)
        pull(first.reference, root, _options(registry, version))
        process = _emustore_cli(root, second.reference, registry, version)
        time.sleep(rng.uniform(0.05, 1.2))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        with Containerd(version, root) as daemon:
            rows = _check(daemon)
            assert rows[first.reference] == "complete true"
            assert rows.get(second.reference, "complete true") == "complete true"
        pull(second.reference, root, _options(registry, version))  # the next writer cleans up and completes
        with Containerd(version, root) as daemon:
            assert set(_check(daemon).values()) == {"complete true"}
        assert not os.listdir(ContainerdRoot(root).staging)
        survived += 1
    record("test_sigkill_leaves_a_store_containerd_opens", trials=KILL_TRIALS, killed=killed, opened=survived)
    assert killed >= KILL_TRIALS // 2


def test_concurrent_pulls(factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = ("modes_owners", "shared_base", "whiteouts", "times")
    processes = [_emustore_cli(root, factory_suite[name].reference, registry, "2.1") for name in names]
    codes = [process.wait() for process in processes]
    errors = [process.stderr.read().decode() for process in processes if process.stderr is not None]
    assert codes == [0] * len(names), errors
    with Containerd("2.1", root) as daemon:
        assert _images(daemon) == {factory_suite[name].reference for name in names}
        assert set(_check(daemon).values()) == {"complete true"}
    record("test_concurrent_pulls", writers=len(names), failed=0)


def test_running_containerd_is_refused(factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pull(factory_suite["times"].reference, root, _options(registry, "2.1"))
    with Containerd("2.1", root):
        process = _emustore_cli(root, factory_suite["whiteouts"].reference, registry, "2.1")
        _, err = process.communicate()
        assert process.returncode != 0
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "in use by a running containerd" in lines[0], lines
