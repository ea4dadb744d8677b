"""Docker 26 and 28 as oracles (issue 16): the trees they write for the factory suite's pulls, and
their adoption of an emustore root.

One module fixture starts both engines side by side, each on its own data root, and has them pull
the suite (zstd images included: 26 and 28 pull them) while emustore performs the same pulls into
one root per engine with `--engine N`, and one in its default 20.10 dialect. Each engine's tree
must equal emustore's for that engine (0 differences once random ids are mapped); emustore's
trees for 20.10 and N must differ by exactly the documented differences of that engine
(tests/support/dialects.py, shared docs engines.md §2), each of them shown by the suite. Then
each engine, started on its emustore root, lists, inspects, runs, saves and pushes the images,
runs a container through create/start/diff/rm, and removes images with rmi and image prune.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from emustore.api import Store
from emustore.errors import LayerError
from emustore.fsck import check
from emustore.pull import PullOptions, pull
from tests.support.daemons import Daemons
from tests.support.dialects import DIALECTS, expect_dialect
from tests.support.dockerd import Dockerd
from tests.support.engines import find_engine, missing
from tests.support.fidelity import pull_sequence, saved_layer_digests
from tests.support.figures import record
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import Node, diff_nodes, diff_trees, normalized_tree

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

NEW_ENGINES = ("26", "28")
SAVED = ("whiteouts", "zstd")
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
WHITEOUTS_SEEN = "/w:\nkeep\nopq1\nopq2\n\n/w/opq1:\nnew\n\n/w/opq2:\n"


@dataclass
class Pulled:
    """After the pull sequence: per engine, its normalised tree and emustore's for it, emustore's
    in the 20.10 dialect, and the emustore root the engine adopts; the image the moved tag named first."""

    trees: dict[str, tuple[dict[str, Node], dict[str, Node]]]
    default_tree: dict[str, Node]
    emustore_roots: dict[str, Path]
    engine_roots: dict[str, Path]
    moving: PushedImage


@pytest.fixture(scope="module")
def pulled(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pulled]:
    base = tmp_path_factory.mktemp("engines")
    available = [version for version in NEW_ENGINES if missing(find_engine(version)) is None]
    sequence = pull_sequence(factory_suite, registry.host, "engines/moving")
    roots = {version: base / f"emustore-{version}" for version in [*available, "20.10"]}
    daemons = Daemons()
    try:
        pullers = {version: daemons.start(version, base / f"pulled-{version}") for version in available}
        with ThreadPoolExecutor(max_workers=max(1, len(pullers))) as pool:

            def pull_everywhere(references: Iterable[str]) -> None:
                engines = [pool.submit(_docker_pulls, daemon, references) for daemon in pullers.values()]
                for reference in references:
                    for version, root in roots.items():
                        pull(reference, root, PullOptions(engine=version))
                for done in engines:
                    done.result()

            pull_everywhere(sequence.before)
            sequence.move()
            pull_everywhere([sequence.moving.reference])
    finally:
        daemons.stop()
    trees = {version: (normalized_tree(daemon.data_root), normalized_tree(roots[version])) for version, daemon in pullers.items()}
    engine_roots = {version: daemon.data_root for version, daemon in pullers.items()}
    yield Pulled(trees, normalized_tree(roots["20.10"]), roots, engine_roots, sequence.moving)


def _docker_pulls(daemon: Dockerd, references: Iterable[str]) -> None:
    for reference in references:
        daemon.docker("pull", reference)


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_engine_tree_equals_emustore_with_its_engine(version: str, pulled: Pulled) -> None:
    Daemons.require(version)
    engine, emustore = pulled.trees[version]
    differences = diff_nodes(engine, emustore)
    record(f"engine {version} tree vs emustore --engine {version}", paths=len(engine), differences=len(differences))
    assert "engine-id" in engine and "engine-id" in emustore
    assert differences == [], "\n".join(differences[:60])


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_emustore_dialects_differ_by_the_documented_differences(version: str, pulled: Pulled) -> None:
    """emustore's 20.10 tree, with engine N's documented differences applied, is its tree for N;
    every documented difference shows in the suite (none is checked vacuously)."""
    Daemons.require(version)
    default = dict(pulled.default_tree)
    dialect = dict(pulled.trees[version][1])
    seen = expect_dialect(default, dialect, version)
    differences = diff_nodes(dialect, default)
    record(f"emustore 20.10 vs --engine {version}", **seen, undocumented=len(differences))
    assert differences == [], "undocumented differences (engines.md §2):\n" + "\n".join(differences[:60])
    gone = set(DIALECTS[version]) - set(seen)
    assert not gone, f"documented differences that no longer show with {version}: {sorted(gone)}"


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_store_commands_read_the_engines_own_root(
    version: str, pulled: Pulled, factory_suite: dict[str, PushedImage], tmp_path: Path
) -> None:
    """fsck finds the engine's root clean; images, inspect and save read it as they read emustore's."""
    Daemons.require(version)
    engine_root, ours = pulled.engine_roots[version], pulled.emustore_roots[version]
    assert check(engine_root) == [] and check(ours) == []
    run = subprocess.run([sys.executable, "-m", "emustore", "fsck", "--root", str(engine_root)], capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "") and "Docker 28's dialect (engine-id (26 or later" in run.stderr
    theirs, mine = Store(engine_root), Store(ours)
    assert theirs.image_rows(all=True) == mine.image_rows(all=True)
    for image in factory_suite.values():
        assert _without_paths(theirs.inspect(image.image_id)) == _without_paths(mine.inspect(image.image_id))
    usage = [store.disk_usage() for store in (theirs, mine)]
    assert len({(u.layers_size, tuple((i.image.id, i.shared_size, i.unique_size) for i in u.images)) for u in usage}) == 1
    for name in SAVED:
        archive = tmp_path / f"{name}.tar"
        theirs.save([factory_suite[name].image_id], archive)
        assert saved_layer_digests(archive) == list(factory_suite[name].diff_ids), name


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_emustore_rmi_on_the_engines_root(
    version: str, pulled: Pulled, factory_suite: dict[str, PushedImage], engine_factory: Callable[[str, Path], Dockerd],
    tmp_path: Path,
) -> None:
    """emustore removes an image from (a copy of) the engine's own root; the engine, started on it, agrees."""
    Daemons.require(version)
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", "--", str(pulled.engine_roots[version]), str(root)], check=True)
    gone = factory_suite["padding"]
    Store(root).remove(gone.reference)
    assert check(root) == []
    daemon = engine_factory(version, root)
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    assert gone.image_id not in listed and factory_suite["whiteouts"].image_id in listed
    daemon.docker("rmi", factory_suite["whiteouts"].reference)
    daemon.stop()
    assert check(root) == []


def _without_paths(document: dict[str, object]) -> dict[str, object]:
    """An inspect document without GraphDriver (paths of random ids) and LastTagTime (a time)."""
    return {key: value for key, value in document.items() if key not in ("GraphDriver", "Metadata")}


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_engine_adopts_an_emustore_root(
    version: str, pulled: Pulled, factory_suite: dict[str, PushedImage], registry: RegistryServer,
    engine_factory: Callable[[str, Path], Dockerd], tmp_path: Path,
) -> None:
    Daemons.require(version)
    daemon = engine_factory(version, pulled.emustore_roots[version])
    images = {**factory_suite, "moving-before": pulled.moving}
    listed = {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    assert {image.image_id for image in images.values()} <= listed
    for name, image in images.items():
        inspect = json.loads(daemon.docker("image", "inspect", image.image_id).stdout)[0]
        assert (inspect["Id"], inspect["RootFS"]["Layers"]) == (image.image_id, list(image.diff_ids)), name
        assert inspect["GraphDriver"]["Name"] == "overlay2"

    whiteouts = factory_suite["whiteouts"].reference
    run = daemon.docker("run", "--rm", "--network", "none", whiteouts, "ls", "/w", "/w/opq1", "/w/opq2")
    assert run.stdout == WHITEOUTS_SEEN
    for name in SAVED:
        archive = tmp_path / f"{name}.tar"
        daemon.docker("save", "-o", str(archive), factory_suite[name].image_id)
        assert saved_layer_digests(archive) == list(factory_suite[name].diff_ids), name
    _check_push(daemon, registry, factory_suite["whiteouts"], f"adopted-{version}/whiteouts")
    _check_container(daemon, whiteouts)

    daemon.docker("rmi", factory_suite["padding"].reference)
    assert factory_suite["padding"].image_id not in {image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json()}
    daemon.docker("image", "prune", "--all", "--force")
    assert daemon.api("GET", "/v1.41/images/json").json() == []
    daemon.stop()
    root = pulled.emustore_roots[version]
    assert sorted(path.name for path in (root / "overlay2").iterdir()) == ["l"]
    assert list((root / "overlay2" / "l").iterdir()) == []
    assert list((root / "image" / "overlay2" / "layerdb" / "sha256").iterdir()) == []


def _check_push(daemon: Dockerd, registry: RegistryServer, image: PushedImage, repository: str) -> None:
    """The engine pushes the image under another name; the registry gets the same layer blobs."""
    target = f"{registry.host}/{repository}:pushed"
    daemon.docker("tag", image.reference, target)
    assert "digest: sha256:" in daemon.docker("push", target).stdout
    manifest = httpx.get(f"{registry.url}/v2/{repository}/manifests/pushed", headers={"Accept": MANIFEST_TYPES}).json()
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)


def _check_container(daemon: Dockerd, image: str) -> None:
    """create, start (it changes its upper layer), diff, rm."""
    daemon.docker("create", "--name", "changer", "--network", "none", image, "sh", "-c", "echo hi > /new && rm /w/keep")
    daemon.docker("start", "--attach", "changer")
    state = json.loads(daemon.docker("inspect", "changer").stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert set(daemon.docker("diff", "changer").stdout.splitlines()) == {"A /new", "C /w", "D /w/keep"}
    daemon.docker("rm", "changer")
    assert daemon.docker("ps", "--all", "--quiet").stdout == ""


LINK_XATTR = {"user.x": b"v"}
# A symlink carrying PAX xattrs: 28 sets them on what the link resolves to inside the layer (and
# fails the layer when that is missing there), 20.10 and 26 on the link (where user.* is refused).
SYMLINK_XATTR_CASES: dict[str, LayerBuilder] = {
    "relative": LayerBuilder().dir("d/").file("d/target", b"t\n").symlink("d/sym", "target", xattrs=LINK_XATTR),
    "absolute": LayerBuilder().dir("d/").file("d/target", b"t\n").symlink("d/sym", "/d/target", xattrs=LINK_XATTR),
    "dangling": LayerBuilder().dir("d/").symlink("d/sym", "nothere", xattrs=LINK_XATTR),
    "target-later": LayerBuilder().dir("d/").symlink("d/sym", "target", xattrs=LINK_XATTR).file("d/target", b"t\n"),
    "to-dir": LayerBuilder().dir("d/").dir("d/sub/").symlink("d/sym", "sub", xattrs=LINK_XATTR),
    "chain": LayerBuilder().dir("d/").file("d/t", b"t\n").symlink("d/l2", "t").symlink("d/sym", "l2", xattrs=LINK_XATTR),
    "up-and-out": LayerBuilder().dir("d/").symlink("d/sym", "../../../../etc/hostname", xattrs=LINK_XATTR),
    "empty-value": LayerBuilder().dir("d/").file("d/target", b"t\n").symlink("d/sym", "target", xattrs={"user.e": b""}),
    "trusted": LayerBuilder().dir("d/").file("d/target", b"t\n").symlink("d/sym", "target", xattrs={"trusted.t": b"v"}),
}


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_symlink_xattrs_get_the_engines_verdict(
    version: str, registry: RegistryServer, engine_factory: Callable[[str, Path], Dockerd], tmp_path: Path
) -> None:
    """Each case pulled by the engine and by `emustore --engine N`: the same verdict, the engine's
    error line within emustore's message; the accepted ones, pulled again into fresh roots by both,
    give equal trees (a refused pull leaves the engine's lower layers and their blob records behind,
    emustore publishes nothing: README "Limits")."""
    Daemons.require(version)
    verdicts: dict[str, int] = {"cases": 0, "refused": 0}
    trying = engine_factory(version, tmp_path / "engine-tries")
    accepted = []
    for case, layer in SYMLINK_XATTR_CASES.items():
        reference = busybox_image("docker").layer(layer, created_by=case).push(registry.host, "symx/" + case, "v1").reference
        engine = trying.docker("pull", reference, check=False)
        try:
            pull(reference, tmp_path / "emustore-tries", PullOptions(engine=version))
            ours: str | None = None
            accepted.append(reference)
        except LayerError as exc:
            ours = str(exc)
        verdicts["cases"] += 1
        verdicts["refused"] += ours is not None
        same = (engine.returncode != 0) == (ours is not None) and (ours is None or ours in engine.stderr)
        assert same, f"{case}: engine {version}: {engine.stderr.strip()!r}; emustore: {ours!r}"
    trying.stop()
    daemon = engine_factory(version, tmp_path / "engine")
    for reference in accepted:
        daemon.docker("pull", reference)
        pull(reference, tmp_path / "emustore", PullOptions(engine=version))
    daemon.stop()
    record(f"symlink xattrs, engine {version} vs emustore", **verdicts)
    differences = diff_trees(tmp_path / "engine", tmp_path / "emustore")
    assert differences == [], "\n".join(differences)
