"""`images`, `inspect`, `rmi`, `du`, `fsck` with `--store containerd`, judged by containerd 1.6.20 and 2.1.9.

Roots written by `ctr images pull` itself (and by emustore): `emustore images` must print what
`ctr images ls` prints, byte for byte; `inspect`'s check what `ctr images check` says; `rmi` on a
copy of a root must leave what `ctr images rm --sync` leaves on another copy (both bbolt files
dumped and normalised, and the files: tests/support/containerdcompare.py); a SIGKILL at each phase
of `rmi` leaves a root containerd opens, cleaned by the next writer; `du -v` prints `ctr content
ls`'s sizes and `ctr snapshots usage`; fsck finds containerd's own roots clean, and damage and
leftovers in a copy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.api import PullOptions, Store
from emustore.display import binary_size
from emustore.errors import EmustoreError
from emustore.pull import pull
from emustore.registry.options import RegistryOptions
from emustore.stores.containerd.layout import ContainerdRoot
from tests.support.containerd import Containerd
from tests.support.containerdcompare import diff_roots, dump, snapshot_chains
from tests.support.daemons import Daemons
from tests.support.dockerd import Dockerd
from tests.support.figures import record
from tests.support.imagefactory import PushedImage
from tests.support.killing import KILL_AT_PHASE
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle]

VERSIONS = ("1.6", "2.1")
NAMES = ("whiteouts", "shared_base", "modes_owners", "docker_list", "oci_index", "zstd")
LABELS = ("b.second=2", "a.first=1")


def _emustore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=120)


def _copy(source: Path, target: Path) -> Path:
    """A copy keeping devices, xattrs, modes and times (cp -a)."""
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    return target


@pytest.fixture(scope="module", params=VERSIONS)
def ctr_root(
    request: pytest.FixtureRequest, factory_suite: dict[str, PushedImage], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, str, str]:
    """(version, a root containerd pulled NAMES into and labelled, its `ctr images ls`, its `ctr images check`)."""
    version: str = request.param
    root = tmp_path_factory.mktemp("ctr-" + version) / "root"
    with Containerd(version, root) as daemon:
        for name in NAMES:
            daemon.ctr("images", "pull", "--plain-http", factory_suite[name].reference)
        daemon.ctr("images", "label", factory_suite["whiteouts"].reference, *LABELS)
        listing = daemon.ctr("images", "ls")
        check = daemon.ctr("images", "check")
    return version, root, listing, check


def _check_rows(text: str) -> dict[str, str]:
    """`ctr images check` rows: name → "STATUS (p/r) SIZE UNPACKED"."""
    rows = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields:
            rows[fields[0]] = " ".join(fields[3:])
    return rows


def _our_check(store: Store, name: str) -> str:
    check = store.containerd().inspect(name)["Check"]
    return "%s (%d/%d) %s/%s %s" % (
        check["status"], check["present"], check["required"], binary_size(check["presentSize"]),
        binary_size(check["requiredSize"]), "true" if check["unpacked"] else "false",
    )


def test_images_equals_ctr_images_ls(ctr_root: tuple[str, Path, str, str]) -> None:
    version, root, listing, check = ctr_root
    ours = _emustore("images", "--store", "containerd", "--root", str(root))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == listing
    quiet = _emustore("images", "-q", "--store", "containerd", "--root", str(root))
    assert quiet.stdout.split() == [line.split()[0] for line in listing.splitlines()[1:]]
    store = Store(root)
    theirs = _check_rows(check)
    assert {name: _our_check(store, name) for name in theirs} == theirs
    record("test_images_equals_ctr_images_ls[%s]" % version, images=len(theirs), differences=0)


def test_images_of_emustore_root_equals_ctr(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    """On a root emustore wrote (its lock present), as containerd 2.1 started on it lists it."""
    root = tmp_path / "root"
    options = PullOptions(
        registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd", engine="containerd-2.1",
    )
    for name in NAMES:
        pull(factory_suite[name].reference, root, options)
    with Containerd("2.1", root) as daemon:
        listing = daemon.ctr("images", "ls")
        check = daemon.ctr("images", "check")
    assert _emustore("images", "--store", "containerd", "--root", str(root)).stdout == listing
    assert {name: _our_check(Store(root), name) for name in _check_rows(check)} == _check_rows(check)
    assert Store(root).containerd().fsck() == []


def test_inspect_names_the_chain(ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage]) -> None:
    _, root, _, _ = ctr_root
    image = factory_suite["whiteouts"]
    done = _emustore("inspect", "--store", "containerd", "--root", str(root), image.reference, "nope:v1")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == ["emustore: No such image: nope:v1 (namespace default)"]

    [document] = json.loads(done.stdout)
    assert document["Target"]["digest"] == image.digest
    assert document["Config"]["digest"] == image.image_id
    assert [layer["digest"] for layer in document["Layers"]] == list(image.layer_digests)
    assert [layer["diffID"] for layer in document["Layers"]] == list(image.diff_ids)
    assert document["Labels"] == dict(sorted(label.split("=") for label in LABELS))
    chains = snapshot_chains(root)
    for layer in document["Layers"]:
        assert chains[layer["snapshot"]["id"]] == layer["chainID"]
        assert os.path.isdir(Path(layer["snapshot"]["path"]) / "fs")


def _removals(suite: dict[str, PushedImage]) -> list[str]:
    """An image sharing its base with others, and an index."""
    return [suite["shared_base"].reference, suite["docker_list"].reference]


def test_rmi_equals_ctr_images_rm_sync(
    ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage], tmp_path: Path
) -> None:
    version, root, _, _ = ctr_root
    theirs, ours = _copy(root, tmp_path / "theirs"), _copy(root, tmp_path / "ours")
    blobs_before = len(os.listdir(ContainerdRoot(ours).blobs))
    with Containerd(version, theirs) as daemon:
        for reference in _removals(factory_suite):
            daemon.ctr("images", "rm", "--sync", reference)
    done = _emustore("rmi", "--store", "containerd", "--root", str(ours), *_removals(factory_suite))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == _removals(factory_suite)
    differences = diff_roots(theirs, ours)
    removed = blobs_before - len(os.listdir(ContainerdRoot(ours).blobs))
    record("test_rmi_equals_ctr_images_rm_sync[%s]" % version, removed_blobs=removed, differences=len(differences))
    assert removed > 0
    assert differences == [], "\n".join(differences[:40])
    assert Store(ours).containerd().fsck() == []
    with Containerd(version, ours) as daemon:
        rows = _check_rows(daemon.ctr("images", "check"))
    assert set(rows) == {factory_suite[name].reference for name in NAMES} - set(_removals(factory_suite))
    assert all(row.startswith("complete") and row.endswith("true") for row in rows.values()), rows


def test_rmi_missing_image_changes_nothing(ctr_root: tuple[str, Path, str, str], tmp_path: Path) -> None:
    _, root, _, _ = ctr_root
    ours = _copy(root, tmp_path / "ours")
    before = dump(ContainerdRoot(ours).meta_db)
    done = _emustore("rmi", "--store", "containerd", "--root", str(ours), "nope:v1")
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert dump(ContainerdRoot(ours).meta_db) == before


def test_rmi_refuses_a_running_containerd(ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage], tmp_path: Path) -> None:
    version, root, _, _ = ctr_root
    ours = _copy(root, tmp_path / "ours")
    with Containerd(version, ours):
        done = _emustore("rmi", "--store", "containerd", "--root", str(ours), factory_suite["zstd"].reference)
    assert done.returncode != 0
    assert "in use by a running containerd" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# rmi's phases (stores/containerd/removal.py): a method replaced in the child by one that SIGKILLs
RMI_KILL_PHASES = (
    "emustore.stores.containerd.metadata:MetaDB.remove",  # nothing changed yet
    "after:emustore.stores.containerd.metadata:MetaDB.remove",  # images and records gone, files not
    "after:emustore.stores.containerd.snapshots:Snapshotter.remove_unrecorded",  # snapshots gone, blobs not
    "emustore.bbolt.writer:Transaction._write_meta",  # meta.db's new pages written, not its meta page
)
KILLED_RMI = KILL_AT_PHASE + """
phase, root, reference = sys.argv[1:]
from emustore.api import Store
Store(root).containerd().remove([reference])
"""


@pytest.mark.parametrize("phase", RMI_KILL_PHASES)
def test_sigkilled_rmi_leaves_a_store_containerd_opens(
    phase: str, ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage], tmp_path: Path
) -> None:
    version, root, _, _ = ctr_root
    removed, second = factory_suite["shared_base"].reference, factory_suite["oci_index"].reference
    ours = _copy(root, tmp_path / "ours")
    child = subprocess.run([sys.executable, "-c", KILLED_RMI, phase, str(ours), removed], capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    committed = phase.startswith("after:")
    with Containerd(version, _copy(ours, tmp_path / "opened")) as daemon:
        rows = _check_rows(daemon.ctr("images", "check"))
        assert (removed in rows) is not committed
        assert all(row.startswith("complete") and row.endswith("true") for row in rows.values()), rows
    # the next writer sweeps what the killed one left; the result is what ctr leaves
    assert Store(ours).containerd().remove([second]).images == [second]
    theirs = _copy(root, tmp_path / "theirs")
    with Containerd(version, theirs) as daemon:
        for reference in ([removed] if committed else []) + [second]:
            daemon.ctr("images", "rm", "--sync", reference)
    differences = diff_roots(theirs, ours)
    where = phase.rsplit(":", 1)[-1] + (" (after)" if committed else "")
    record("test_sigkilled_rmi_leaves_a_store_containerd_opens[%s, %s]" % (where, version), killed=1, opened=1,
           differences=len(differences))
    assert differences == [], "\n".join(differences[:40])
    assert os.listdir(ContainerdRoot(ours).staging) == []


def test_rmi_on_a_missing_root_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EmustoreError):
        Store(tmp_path / "none").containerd().remove(["x:v1"])
    assert not (tmp_path / "none").exists()


def test_du_equals_ctr_usage(ctr_root: tuple[str, Path, str, str], tmp_path: Path) -> None:
    """`du -v`: the digests and sizes `ctr content ls` lists, then `ctr snapshots usage` byte for byte."""
    version, root, _, _ = ctr_root
    copy = _copy(root, tmp_path / "copy")
    with Containerd(version, copy) as daemon:
        content = daemon.ctr("content", "ls")
        usage = daemon.ctr("snapshots", "usage")
    done = _emustore("du", "-v", "--store", "containerd", "--root", str(root))
    assert done.returncode == 0, done.stderr
    ours_content, ours_usage = done.stdout.split("\n\n")
    assert ours_usage == usage
    theirs = [line.split("\t")[0] + " " + [f for f in line.split("\t")[1:] if f][0] for line in content.splitlines()[1:]]
    assert [" ".join(line.split()) for line in ours_content.splitlines()[1:]] == theirs
    summary = _emustore("du", "--store", "containerd", "--root", str(root)).stdout.splitlines()
    assert summary[1].split()[:2] == ["Content", str(len(theirs))]
    assert summary[2].split()[:2] == ["Snapshots", str(len(usage.splitlines()) - 1)]
    record("test_du_equals_ctr_usage[%s]" % version, blobs=len(theirs), snapshots=len(usage.splitlines()) - 1)


def test_fsck_finds_ctr_roots_clean(ctr_root: tuple[str, Path, str, str]) -> None:
    version, root, _, _ = ctr_root
    done = _emustore("fsck", "--store", "containerd", "--root", str(root))
    assert (done.returncode, done.stdout) == (0, ""), done.stdout
    assert done.stderr.strip().endswith("; 0 problems")


def test_fsck_finds_damage_and_repair_removes_leftovers(
    ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage], tmp_path: Path
) -> None:
    """A changed blob, a lost fs/ dir: problems; an unrecorded blob, a stray snapshot dir, a dead
    writer's staging set: leftovers, removed by --repair and nothing else."""
    version, root, _, _ = ctr_root
    ours = _copy(root, tmp_path / "ours")
    layout = ContainerdRoot(ours)
    image = factory_suite["whiteouts"]
    manifest = layout.blob(image.digest)
    os.chmod(manifest, 0o644)
    with open(manifest, "ab") as appended:
        appended.write(b" ")
    chains = {chain: number for number, chain in snapshot_chains(ours).items()}
    top = layout.snapshot(chains[Store(ours).containerd().inspect(factory_suite["modes_owners"].reference)["Layers"][-1]["chainID"]])
    (top / "fs").rename(top / "gone")
    (layout.blobs / "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").write_bytes(b"")
    (layout.snapshots / "999").mkdir()
    dead = layout.staging / "pull-dead"
    dead.mkdir(parents=True)
    done = _emustore("fsck", "--store", "containerd", "--root", str(ours))
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert any(str(manifest) in line and "does not match" in line for line in lines), lines
    assert any(str(top) in line and "no fs/" in line for line in lines), lines
    leftovers = {str(layout.blobs / "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                 str(layout.snapshots / "999"), str(dead)}
    assert {line.split(": ")[0] for line in lines if "collects it" in line or "no record" in line or "dead writer" in line} == leftovers
    repaired = _emustore("fsck", "--repair", "--store", "containerd", "--root", str(ours))
    assert {line.removeprefix("removed ") for line in repaired.stdout.splitlines() if line.startswith("removed ")} == leftovers
    assert len([line for line in repaired.stdout.splitlines() if not line.startswith("removed ")]) == len(lines) - len(leftovers)
    record("test_fsck_finds_damage_and_repair_removes_leftovers[%s]" % version, damaged=2, leftovers=3,
           found=len(lines), removed=len(leftovers))


SAVED = ("whiteouts", "zstd", "docker_list")


def test_save_loads_into_dockerd_and_containerd(
    ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage],
    dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path,
) -> None:
    """`save` of a containerd root (gzip, zstd, an index): dockerd 20.10 loads the docker-archive
    with the images' diff ids and config ids; containerd imports the OCI archive and finds the
    images complete, with the same configs."""
    version, root, _, _ = ctr_root
    references = [factory_suite[name].reference for name in SAVED]
    archive, oci = tmp_path / "images.tar", tmp_path / "images-oci.tar"
    for path, fmt in ((archive, "docker"), (oci, "oci")):
        done = _emustore("save", "--store", "containerd", "--root", str(root), "--format", fmt, "-o", str(path), *references)
        assert done.returncode == 0, done.stderr
    ours = Store(root).containerd()
    expected = {ref: ours.inspect(ref) for ref in references}
    daemon = dockerd_factory(tmp_path / "d")
    daemon.docker("load", "-i", str(archive))
    for reference, document in expected.items():
        inspected = json.loads(daemon.docker("image", "inspect", reference).stdout)[0]
        assert inspected["Id"] == document["Config"]["digest"]
        assert inspected["RootFS"]["Layers"] == [layer["diffID"] for layer in document["Layers"]]
    with Containerd(version, tmp_path / "imported") as imported:
        imported.ctr("images", "import", str(oci))
        rows = _check_rows(imported.ctr("images", "check"))
    assert set(rows) >= set(references), rows
    assert all(rows[reference].startswith("complete") for reference in references), rows
    record("test_save_loads_into_dockerd_and_containerd[%s]" % version, images=len(references), loaded=len(references))


def test_explain_walks_to_the_snapshots_and_mounts_them(
    ctr_root: tuple[str, Path, str, str], factory_suite: dict[str, PushedImage], tmp_path: Path
) -> None:
    """The text names every blob and snapshot of the chain containerd wrote; the merged view is
    what the overlay mount of the snapshots (`--mount`) really shows; the page is written."""
    version, root, _, _ = ctr_root
    image = factory_suite["whiteouts"]
    base = ["--store", "containerd", "--root", str(root), image.reference]
    text = _emustore("explain", *base)
    assert text.returncode == 0, text.stderr
    chains = snapshot_chains(root)
    for digest in (image.digest, image.image_id, *image.layer_digests):
        assert digest in text.stdout
    document = Store(root).containerd().inspect(image.reference)
    for layer in document["Layers"]:
        assert "snapshots/%d/fs/" % layer["snapshot"]["id"] in text.stdout
        assert chains[layer["snapshot"]["id"]] == layer["chainID"]
    assert "(whiteout)" in text.stdout and "(opaque: trusted.overlay.opaque=y)" in text.stdout
    merged = _emustore("explain", *base, "--merged").stdout
    listed = {line.split()[5] for line in merged.splitlines()}  # "layer N  mode owner size /path …"
    mountpoint = tmp_path / "look"
    mountpoint.mkdir()
    mounted = _emustore("explain", *base, "--mount", str(mountpoint))
    assert mounted.returncode == 0, mounted.stderr
    try:
        seen = set()
        for top, dirs, files in os.walk(mountpoint):
            for name in dirs + files:
                seen.add("/" + os.path.relpath(os.path.join(top, name), mountpoint))
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
    assert seen == listed
    page = tmp_path / "page.html"
    assert _emustore("explain", *base, "--html", str(page)).returncode == 0
    assert image.digest in page.read_text() and "/w/opq1/new" in page.read_text()
    record("test_explain_walks_to_the_snapshots_and_mounts_them[%s]" % version, layers=len(document["Layers"]),
           merged_entries=len(listed), mounted_entries=len(seen))


MOBY = ("whiteouts", "shared_base", "docker_list")


def _rows(text: str) -> set[tuple[str, ...]]:
    """`docker images` rows without CREATED (rows of equal times come in no fixed order)."""
    found = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        found.add(tuple(fields[:3] + fields[-1:]))
    return found


def test_docker_28_adopts_an_emustore_moby_root(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    """Docker 28 with its containerd image store (Docker 29's default) started on a data root whose
    `containerd/daemon` emustore wrote (`--namespace moby --engine 28`): `docker images` lists what
    `emustore images --namespace moby` prints, runs an image, saves one (its config inside), removes
    one; emustore then lists what is left and fsck finds nothing but the collector's leftovers."""
    data_root = tmp_path / "docker"
    root = data_root / "containerd" / "daemon"
    root.parent.mkdir(parents=True)
    options = PullOptions(
        registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd", namespace="moby", engine="28",
    )
    for name in MOBY:
        pull(factory_suite[name].reference, root, options)
    ours = _emustore("images", "--store", "containerd", "--namespace", "moby", "--root", str(root))
    assert ours.returncode == 0, ours.stderr
    daemons = Daemons()
    try:
        docker = daemons.start("28", data_root, containerd_store=True)
        listed = docker.docker("images").stdout
        assert _rows(listed) == _rows(ours.stdout), (listed, ours.stdout)
        full = docker.docker("images", "--no-trunc").stdout
        assert {line.split()[2] for line in full.splitlines()[1:]} == {factory_suite[name].digest for name in MOBY}
        shown = docker.docker("run", "--rm", factory_suite["whiteouts"].reference, "ls", "-a", "/w").stdout
        assert shown.split() == [".", "..", "keep", "opq1", "opq2"]
        saved = tmp_path / "saved.tar"
        docker.docker("save", "-o", str(saved), factory_suite["shared_base"].reference)
        members = subprocess.run(["tar", "-tf", str(saved)], capture_output=True, text=True, check=True).stdout.split()
        assert "blobs/sha256/" + factory_suite["shared_base"].image_id.split(":")[1] in members
        removed = docker.docker("rmi", factory_suite["shared_base"].reference).stdout
        assert "Untagged: %s" % factory_suite["shared_base"].reference in removed
    finally:
        daemons.stop()
    left = _emustore("images", "-q", "--store", "containerd", "--namespace", "moby", "--root", str(root)).stdout.split()
    assert left == sorted(factory_suite[name].reference for name in MOBY if name != "shared_base")
    problems = Store(root).containerd("moby").fsck()
    assert [problem for problem in problems if not problem.leftover] == []
    record("test_docker_28_adopts_an_emustore_moby_root", images=len(MOBY), listed=len(_rows(listed)), ran=1, saved=1,
           removed=1, problems=len([p for p in problems if not p.leftover]))


def test_a_pull_racing_an_rmi_refuses_to_reference_what_it_collected(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull plans to reuse the base snapshots of an image that an rmi removes (and collects) before
    the pull commits: the pull refuses in one line, writing nothing; the root stays clean and the next
    pull completes."""
    from emustore.stores.containerd.store import ContainerdStore

    root = tmp_path / "root"
    options = PullOptions(
        registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd", engine="containerd-2.1",
    )
    first, second = factory_suite["modes_owners"].reference, factory_suite["shared_base"].reference
    pull(first, root, options)
    original = ContainerdStore.committing

    def racing(self: ContainerdStore, record_blobs: bool) -> object:
        Store(root).containerd().remove([first])
        return original(self, record_blobs)

    monkeypatch.setattr(ContainerdStore, "committing", racing)
    with pytest.raises(EmustoreError) as refused:
        pull(second, root, options)
    monkeypatch.undo()
    assert "removed meanwhile" in str(refused.value) and "\n" not in str(refused.value)
    assert Store(root).containerd().images() == [] and Store(root).containerd().fsck() == []
    pull(second, root, options)
    assert [view.image.name for view in Store(root).containerd().images()] == [second]
    assert Store(root).containerd().fsck() == []
    with Containerd("2.1", root) as daemon:
        assert _check_rows(daemon.ctr("images", "check"))[second].startswith("complete")


def test_rmi_keeps_what_another_namespace_records(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    """The same image in "default" and "k8s.io": removed from one, every blob and the other
    namespace's snapshots stay, and containerd finds it complete there."""
    root = tmp_path / "root"
    reference = factory_suite["whiteouts"].reference
    for namespace in ("default", "k8s.io"):
        pull(reference, root, PullOptions(
            registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd",
            engine="containerd-2.1", namespace=namespace,
        ))
    blobs = set(os.listdir(ContainerdRoot(root).blobs))
    removal = Store(root).containerd().remove([reference])
    assert removal.images == [reference] and removal.contents > 0 and removal.snapshots == len(factory_suite["whiteouts"].diff_ids)
    assert set(os.listdir(ContainerdRoot(root).blobs)) == blobs
    assert Store(root).containerd().images() == [] and Store(root).containerd().fsck() == []
    with Containerd("2.1", root) as daemon:
        row = _check_rows(daemon.ctr("-n", "k8s.io", "images", "check"))[reference]
        assert row.startswith("complete (5/5)") and row.endswith(" true"), row
        assert daemon.ctr("images", "ls", "-q").split() == []
