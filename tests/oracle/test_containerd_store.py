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
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emustore.api import PullOptions, Store
from emustore.errors import EmustoreError
from emustore.pull import pull
from emustore.registry.options import RegistryOptions
from emustore.stores.containerd.layout import ContainerdRoot
from tests.support.canary import changes, make_canary, snapshot
from tests.support.containerd import CONTAINERD_VERSIONS, Containerd
from tests.support.containerdcompare import diff_roots, snapshot_chains
from tests.support.daemons import Daemons
from tests.support.figures import record
from tests.support.imagebuild import ImageBuilder
from tests.support.imagefactory import PushedImage
from tests.support.killing import KILL_AT_PHASE
from tests.support.registry import RegistryServer
from tests.unit.test_robust_hostile import CONTAINED, REFUSED

pytestmark = [pytest.mark.oracle]

FIDELITY_VERSIONS = ("1.6", "2.1")


def _options(registry: RegistryServer, version: str, **kw: object) -> PullOptions:
    settings: dict[str, object] = {"engine": "containerd-" + version, **kw}
    return PullOptions(
        registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd", **settings,  # type: ignore[arg-type]
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
    # the suite, a re-pull (a no-op but for times), a pull by digest (named by it)
    references = [image.reference for image in factory_suite.values()]
    references += [references[0], factory_suite["whiteouts"].digest_reference]
    with Containerd(version, base / "containerd") as daemon:
        for reference in references:
            daemon.ctr("images", "pull", "--plain-http", reference)
    ours = base / "emustore"
    for reference in references:
        pull(reference, ours, _options(registry, version))
    return version, daemon.root, ours


def test_fidelity_equals_ctr_pull(fidelity_roots: tuple[str, Path, Path], factory_suite: dict[str, PushedImage]) -> None:
    version, theirs, ours = fidelity_roots
    differences = diff_roots(theirs, ours)
    record("test_fidelity_equals_ctr_pull[%s]" % version, images=len(factory_suite), differences=len(differences))
    assert differences == [], "\n".join(differences[:40])


def test_moby_namespace_equals_docker_28(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    """Docker 28 with its containerd image store (Docker 29's default) pulls the suite into the
    "moby" namespace; emustore's `--namespace moby --engine 28` must write the same."""
    daemons = Daemons()
    try:
        docker = daemons.start("28", tmp_path / "docker", containerd_store=True)
        for image in factory_suite.values():
            docker.docker("pull", "-q", image.reference)
    finally:
        daemons.stop()
    ours = tmp_path / "emustore"
    for image in factory_suite.values():
        pull(image.reference, ours, _options(registry, "2.1", namespace="moby", engine="28"))
    differences = diff_roots(tmp_path / "docker" / "containerd" / "daemon", ours)
    record("test_moby_namespace_equals_docker_28", images=len(factory_suite), differences=len(differences))
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
        listing = daemon.ctr(
            "run", "--rm", factory_suite["whiteouts"].reference, "t-" + version, "ls", "-a", "/w", "/w/opq1", "/w/opq2"
        )
        # whiteouts hide gone and gonedir, opaque dirs hide what lower layers had in them
        assert listing.split() == [
            "/w:", ".", "..", "keep", "opq1", "opq2", "/w/opq1:", ".", "..", "new", "/w/opq2:", ".", "..",
        ], listing
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


def test_hostile_layers_stay_inside(
    hostile_image: PushedImage, module_canary: Path, registry: RegistryServer, scratch: Path
) -> None:
    """Links aimed out of the root, and every case of the unit tier's hostile layers (contained:
    pulled, what they aim at lands inside; refused: one line), through --store containerd; then
    containerd checks every image pulled."""
    make_canary(scratch / "outside")
    root = scratch / "root"
    before = snapshot(scratch, skip=(root,)) | snapshot(module_canary.parent)
    pulled = {hostile_image.reference}
    pull(hostile_image.reference, root, _options(registry, "2.1"))
    refused = 0
    for case, (build, expected) in sorted(CONTAINED.items()):
        image = ImageBuilder().layer(build(scratch)).push(registry.host, "hostile/" + case.lower(), "v1")
        pull(image.reference, root, _options(registry, "2.1"))
        pulled.add(image.reference)
        inside = expected(scratch) if callable(expected) else expected
        fs = ContainerdRoot(root).snapshot(max(snapshot_chains(root))) / "fs"
        assert os.path.lexists(fs / inside), case
    for case, build in sorted(REFUSED.items()):
        image = ImageBuilder().layer(build(scratch)).push(registry.host, "hostile/" + case.lower(), "v1")
        with pytest.raises(EmustoreError) as refusal:
            pull(image.reference, root, _options(registry, "2.1"))
        assert "\n" not in str(refusal.value)
        refused += 1
    outside = changes(before, snapshot(scratch, skip=(root,)) | snapshot(module_canary.parent))
    record(
        "test_hostile_layers_stay_inside", cases=len(CONTAINED) + len(REFUSED) + 1, contained=len(CONTAINED) + 1,
        refused=refused, outside_changes=len(outside),
    )
    assert outside == []
    staging = ContainerdRoot(root).staging
    assert not staging.exists() or os.listdir(staging) == []  # a failed writer removes its staging dir
    with Containerd("2.1", root) as daemon:
        assert _check(daemon) == {reference: "complete true" for reference in pulled}


# Where a killed pull dies: a method of the store replaced, in the child only, by one that SIGKILLs
# itself (after calling the original for "after:" phases), in commit order (store.py's docstring).
KILL_PHASES = (
    "emustore.stores.containerd.store:ContainerdStore.prepare_layer",  # a layer extracted, blob staged
    "emustore.stores.containerd.content:ContentStore.put",  # blobs being published
    "emustore.stores.containerd.snapshots:Snapshotter.record",  # content done, no snapshot recorded
    "after:emustore.stores.containerd.snapshots:Snapshotter.record",  # recorded, no dir in place
    "after:emustore.stores.containerd.snapshots:Snapshotter.publish",  # one dir in place
    "emustore.stores.containerd.metadata:MetaDB.commit",  # everything but meta.db
    "emustore.bbolt.writer:Transaction._write_meta",  # meta.db's new pages written, not its meta page
)
KILLED_PULL = KILL_AT_PHASE + """
phase, root, reference, host, engine = sys.argv[1:]
from emustore.api import PullOptions, Store
from emustore.pull import pull
from emustore.registry.options import RegistryOptions
options = PullOptions(registry=RegistryOptions(insecure_registries=(host,)), store="containerd", engine=engine)
pull(reference, root, options)
"""


@pytest.mark.parametrize("phase", KILL_PHASES)
def test_sigkill_leaves_a_store_containerd_opens(
    phase: str, factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    version = FIDELITY_VERSIONS[KILL_PHASES.index(phase) % 2]
    first, second, third = factory_suite["modes_owners"], factory_suite["shared_base"], factory_suite["times"]
    root = tmp_path / "root"
    pull(first.reference, root, _options(registry, version))
    child = subprocess.run(
        [sys.executable, "-c", KILLED_PULL, phase, str(root), second.reference, registry.host, "containerd-" + version],
        capture_output=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    with Containerd(version, root) as daemon:
        rows = _check(daemon)
        assert rows[first.reference] == "complete true"
        assert second.reference not in rows
        daemon.ctr("images", "pull", "--plain-http", third.reference)  # ids are still free: no collision
        assert _check(daemon)[third.reference] == "complete true"
    pull(second.reference, root, _options(registry, version))  # the next writer cleans up and completes
    layout = ContainerdRoot(root)
    assert os.listdir(layout.staging) == []
    assert sorted(os.listdir(layout.snapshots), key=int) == [str(i) for i in sorted(snapshot_chains(root))]
    assert Store(root).containerd().fsck() == []  # nothing left of the killed writer, blobs included
    with Containerd(version, root) as daemon:
        assert set(_check(daemon).values()) == {"complete true"}
        assert len(_check(daemon)) == 3
    where = phase.rsplit(":", 1)[-1] + (" (after)" if phase.startswith("after:") else "")
    record("test_sigkill_leaves_a_store_containerd_opens[%s, %s]" % (where, version), killed=1, opened=1, previous_intact=1)


CONCURRENT_ROUNDS = 4


def test_concurrent_pulls(factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    """Writers started together on a fresh root, two of them pulling the same image: all succeed,
    containerd finds every image complete, no snapshot is orphaned or doubled."""
    names = ("modes_owners", "shared_base", "whiteouts", "shared_base", "times")
    pulls = failed = 0
    for round_ in range(CONCURRENT_ROUNDS):
        version = FIDELITY_VERSIONS[round_ % 2]
        root = tmp_path / ("r%d" % round_)
        processes = [_emustore_cli(root, factory_suite[name].reference, registry, version) for name in names]
        outcomes = [(process.wait(), process.stderr.read().decode() if process.stderr else "") for process in processes]
        pulls += len(names)
        failed += sum(1 for code, _ in outcomes if code != 0)
        assert [code for code, _ in outcomes] == [0] * len(names), outcomes
        chains = snapshot_chains(root)
        assert len(set(chains.values())) == len(chains)
        assert sorted(os.listdir(ContainerdRoot(root).snapshots), key=int) == [str(i) for i in sorted(chains)]
        assert Store(root).containerd().fsck() == []
        with Containerd(version, root) as daemon:
            assert _images(daemon) == {factory_suite[name].reference for name in names}
            assert set(_check(daemon).values()) == {"complete true"}
    record("test_concurrent_pulls", rounds=CONCURRENT_ROUNDS, pulls=pulls, failed_pulls=failed)


def test_running_containerd_is_refused(factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pull(factory_suite["times"].reference, root, _options(registry, "2.1"))
    with Containerd("2.1", root):
        process = _emustore_cli(root, factory_suite["whiteouts"].reference, registry, "2.1")
        _, err = process.communicate()
        assert process.returncode != 0
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "in use by a running containerd" in lines[0], lines
