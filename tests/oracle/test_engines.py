"""Docker 26 and 28 as oracles (issue 16): the trees they write for the factory suite's pulls, and
their adoption of an emustore root.

One module fixture starts both engines side by side, each on its own data root, and has them pull
the suite (zstd images included: 26 and 28 pull them) while emustore performs the same pulls into
one root per engine. The comparison expects exactly each engine's documented dialect differences
from 20.10, emustore's dialect today (tests/support/dialects.py; shared docs engines.md §2, issue
16), and nothing else. Then each engine, started on its emustore root, lists, inspects, runs,
saves and pushes the images, runs a container through create/start/diff/rm, and removes images
with rmi and image prune.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from emustore.pull import pull
from tests.support.daemons import Daemons
from tests.support.dialects import DIALECTS, expect_dialect
from tests.support.dockerd import Dockerd
from tests.support.engines import find_engine, missing
from tests.support.fidelity import pull_sequence, saved_layer_digests
from tests.support.figures import record
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer
from tests.support.treecompare import Node, diff_nodes, normalized_tree

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

NEW_ENGINES = ("26", "28")
SAVED = ("whiteouts", "zstd")
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
WHITEOUTS_SEEN = "/w:\nkeep\nopq1\nopq2\n\n/w/opq1:\nnew\n\n/w/opq2:\n"


@dataclass
class Pulled:
    """After the pull sequence: per engine, its normalised tree and emustore's, and the emustore
    root it adopts; the image the moved tag named first."""

    trees: dict[str, tuple[dict[str, Node], dict[str, Node]]]
    emustore_roots: dict[str, Path]
    moving: PushedImage


@pytest.fixture(scope="module")
def pulled(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pulled]:
    base = tmp_path_factory.mktemp("engines")
    available = [version for version in NEW_ENGINES if missing(find_engine(version)) is None]
    sequence = pull_sequence(factory_suite, registry.host, "engines/moving")
    roots = {version: base / f"emustore-{version}" for version in available}
    daemons = Daemons()
    try:
        pullers = {version: daemons.start(version, base / f"pulled-{version}") for version in available}
        with ThreadPoolExecutor(max_workers=max(1, len(pullers))) as pool:

            def pull_everywhere(references: Iterable[str]) -> None:
                engines = [pool.submit(_docker_pulls, daemon, references) for daemon in pullers.values()]
                for reference in references:
                    for root in roots.values():
                        pull(reference, root)
                for done in engines:
                    done.result()

            pull_everywhere(sequence.before)
            sequence.move()
            pull_everywhere([sequence.moving.reference])
    finally:
        daemons.stop()
    trees = {version: (normalized_tree(daemon.data_root), normalized_tree(roots[version])) for version, daemon in pullers.items()}
    yield Pulled(trees, roots, sequence.moving)


def _docker_pulls(daemon: Dockerd, references: Iterable[str]) -> None:
    for reference in references:
        daemon.docker("pull", reference)


@pytest.mark.parametrize("version", NEW_ENGINES)
def test_engine_tree_differs_from_emustore_only_by_its_dialect(version: str, pulled: Pulled) -> None:
    Daemons.require(version)
    engine, emustore = pulled.trees[version]
    seen = expect_dialect(emustore, engine, version)
    differences = diff_nodes(engine, emustore)
    record(f"engine {version} tree vs emustore (20.10 dialect)", **seen, undocumented=len(differences))
    assert differences == [], "undocumented differences (engines.md §2):\n" + "\n".join(differences[:60])
    gone = set(DIALECTS[version]) - set(seen)
    assert not gone, f"documented differences that no longer show with {version}: {sorted(gone)}"


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
