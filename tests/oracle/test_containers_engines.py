"""Containers and image inspect in each engine's dialect (issue 16): `emustore create --engine N`
writes what engine N's `docker create` writes, `emustore inspect` prints what its API returns.

One root is pulled once per module by emustore and copied twice per engine: on the first copy the
engine itself creates the containers (the options of test_containers.py, plus an arm64/v8 image
whose config 28 records as ImagePlatform and whose Healthcheck.StartInterval 26+ keep) and copies
files in; on the second emustore does the same with `--engine N`. The two trees must be equal
once ids, times and generated names are normalised (but `engine-id`, which only a daemon writes).
On the engine's own root emustore must print the engine's `image inspect` (its own API version),
list its containers, copy out of them and remove them; the engine must run emustore's containers.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import emustore
from emustore.engines import ENGINE_ENV
from tests.oracle.test_containers import (
    ConfiguredImage,
    _create_all,
    _host_files,
    _without_created,
    emustore as run_emustore,
    rich_image,
    symlinked_image,
)
from tests.support.containertree import diff_roots_with_containers
from tests.support.daemons import Daemons
from tests.support.imagebuild import canonical_json
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

ENGINES = ("20.10", "26", "28")
ARM = "linux/arm64/v8"
HEALTHCHECK = {"Test": ["CMD", "true"], "Interval": 5000000000, "StartInterval": 2000000000, "Retries": 3}


@dataclass
class PlatformImage(ConfiguredImage):
    """An image whose config also carries top-level platform fields (os.features)."""

    top: dict[str, Any] = field(default_factory=dict)

    def config_bytes(self) -> bytes:
        doc = json.loads(super().config_bytes())
        doc.update(self.top)
        return canonical_json(doc)


def arm_image() -> PlatformImage:
    base = busybox_image("docker", cmd=("sh",))
    return PlatformImage(
        architecture="arm64", variant="v8", cmd=("sh",), history=list(base.history),
        extra={"Healthcheck": HEALTHCHECK}, top={"os.features": ["sse4"]},
    )


@dataclass
class Images:
    main: PushedImage
    more: list[PushedImage]  # rich, odd: _create_all's
    arm: PushedImage
    root: Path  # every image, pulled by emustore

    @property
    def all(self) -> list[PushedImage]:
        return [self.main, *self.more, self.arm]


@pytest.fixture(scope="module")
def images(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Images:
    host = registry.host
    main = busybox_image("docker", cmd=("sh",), env=("PATH=/usr/bin:/bin", "LANG=C")).push(host, "cte/busybox", "v1")
    more = [rich_image().push(host, "cte/rich", "v1"), symlinked_image().push(host, "cte/odd", "v1")]
    arm = arm_image().push(host, "cte/arm", "v1")
    root = tmp_path_factory.mktemp("pulled") / "root"
    for image in (main, *more):
        emustore.pull(image.reference, root)
    emustore.pull(arm.reference, root, platform=ARM)
    return Images(main, more, arm, root)


@dataclass
class Created:
    """Per engine: its root (the engine created there) and emustore's, with what the engine printed."""

    version: str
    engine_root: Path
    emustore_root: Path
    inspect: list[Any]  # GET /images/{id}/json at the engine's own API version, per image of Images.all
    ps: str  # `docker ps -a` (CLI 20.10)
    no_command: str  # the daemon's error for a create without a command
    host: Path  # the files copied in


def _create_everywhere(create: Any, images: Images) -> list[str]:
    return [*_create_all(create, images.main, images.more), create("--name", "arm", images.arm.reference)]


def _copies(host: Path) -> list[tuple[Path, str]]:
    return [(host / "greeting.txt", "web:/"), (host / "conf", "web:/etc/app"), (host / "conf", "web:/bin/")]


@pytest.fixture(scope="module", params=ENGINES)
def created(request: pytest.FixtureRequest, images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Created]:
    version = request.param
    Daemons.require(version)
    base = tmp_path_factory.mktemp(f"engine-{version}")
    host = _host_files(base / "host")
    engine_root, emustore_root = base / "engine", base / "emustore"
    for root in (engine_root, emustore_root):
        subprocess.run(["cp", "-a", str(images.root), str(root)], check=True)
    daemons = Daemons()
    try:
        daemon = daemons.start(version, engine_root)
        _create_everywhere(lambda *a: daemon.docker("create", *a).stdout.strip(), images)
        for source, target in _copies(host):
            daemon.docker("cp", str(source), target)
        inspect = [daemon.api("GET", f"/images/{image.image_id}/json").json() for image in images.all]
        ps = daemon.docker("ps", "-a").stdout
        refused = daemon.docker("create", "--entrypoint", "", images.main.reference, check=False)
    finally:
        daemons.stop()
    ids = _create_everywhere(lambda *a: run_emustore("create", "--engine", version, *a, root=emustore_root).stdout.strip(), images)
    assert all(len(i) == 64 for i in ids)
    for source, target in _copies(host):
        run_emustore("cp", str(source), target, root=emustore_root)
    assert refused.returncode != 0
    yield Created(version, engine_root, emustore_root, inspect, ps, refused.stderr.removeprefix("Error response from daemon: "), host)


def test_create_writes_the_engines_containers(created: Created) -> None:
    differences = diff_roots_with_containers(created.engine_root, created.emustore_root, names=True)
    expected = [] if created.version == "20.10" else ["only in A: engine-id (f)"]
    assert differences == expected, "\n".join(differences[:60])
    modes = {path.stat().st_mode & 0o777 for path in (created.emustore_root / "containers").glob("*/hostconfig.json")}
    assert modes == {0o644 if created.version == "20.10" else 0o600}


def test_inspect_prints_the_engines_api(created: Created, images: Images, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key order included; without --engine the root (engine-id, the engine's containers) tells."""
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    ids = [image.image_id for image in images.all]
    expected = json.dumps(created.inspect)
    for engine in (["--engine", created.version], []):
        printed = run_emustore("inspect", *engine, *ids, root=created.engine_root).stdout
        assert json.dumps(json.loads(printed)) == expected, engine
    assert [doc["Id"] for doc in created.inspect] == ids
    assert ("VirtualSize" in created.inspect[0]) == (created.version == "20.10")


def test_store_commands_on_the_engines_containers(created: Created, images: Images, tmp_path: Path) -> None:
    """ps lists what the engine created, cp copies out of it, explain shows it, rm removes it."""
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(created.engine_root), str(root)], check=True)
    assert _without_created(run_emustore("ps", "-a", root=root).stdout) == _without_created(created.ps)
    out = tmp_path / "out"
    out.mkdir()
    run_emustore("cp", "web:/etc/app/app.ini", str(out), root=root)
    assert (out / "app.ini").read_text() == (created.host / "conf" / "app.ini").read_text()
    assert "/web\n" in run_emustore("explain", images.main.reference, root=root).stdout
    listed = run_emustore("ps", "-a", "-q", "--no-trunc", root=root).stdout.split()
    assert len(listed) == 7
    before = {path.name for path in (root / "overlay2").iterdir()}
    for container in listed:
        assert run_emustore("rm", container, root=root).stdout == container + "\n"
    assert run_emustore("ps", "-a", "-q", root=root).stdout == ""
    assert list((root / "containers").iterdir()) == []
    assert list((root / "image/overlay2/layerdb/mounts").iterdir()) == []
    gone = before - {path.name for path in (root / "overlay2").iterdir()}
    assert len(gone) == 2 * len(listed) and all(re.fullmatch(r"[0-9a-f]{64}(-init)?", name) for name in gone)


def test_engine_runs_emustore_containers(created: Created) -> None:
    daemons = Daemons()
    try:
        daemon = daemons.start(created.version, created.emustore_root)
        run = daemon.docker("start", "--attach", "web")
        state = json.loads(daemon.docker("inspect", "web").stdout)[0]["State"]
        names = set(daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    finally:
        daemons.stop()
    assert run.stdout.splitlines()[:1] == ["hello"]
    assert {"busybox", "conf", "sh"} <= set(run.stdout.split())  # `web` runs test_containers.py's NAMED_CMD
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert {"web", "arm"} <= names and len(names) == 7


def test_create_fails_as_the_engine_without_a_command(created: Created, images: Images) -> None:
    before = sorted(path.name for path in (created.emustore_root / "containers").iterdir())
    result = run_emustore(
        "create", "--engine", created.version, "--entrypoint", "", images.main.reference, root=created.emustore_root, check=False
    )
    assert (result.returncode, result.stderr) == (1, "emustore: " + created.no_command)
    assert sorted(path.name for path in (created.emustore_root / "containers").iterdir()) == before
