"""Archives against the real dockerd 20.10: `docker save` → `emustore load` gives dockerd's own
`docker load` tree; `emustore save` gives docker save's layer tars (and archive bytes) and loads
into a fresh dockerd that runs the images."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from emustore.load import load
from emustore.save import save_to_path
from tests.support.dockerd import DOCKER_CLI, DOCKERD_BINARY, Dockerd
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer
from tests.support.tiers import require_binary
from tests.support.treecompare import diff_trees

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

NAMES = (
    "whiteouts", "duplicate_layers", "padding", "links_devices", "long_names", "odd_names",
    "xattrs", "times", "dot_slash", "modes_owners", "shared_base", "oci_index",
)  # fmt: skip
RUNNABLE = ("whiteouts", "links_devices", "modes_owners", "oci_index")
EXTRA_TAG = "other/renamed:t2"


def emustore(*args: str, stdin: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    with (stdin.open("rb") if stdin else open("/dev/null", "rb")) as given:
        return subprocess.run(
            [sys.executable, "-m", "emustore", *args], stdin=given, capture_output=True, timeout=600
        )


@pytest.fixture(scope="module")
def saved(factory_suite: dict[str, PushedImage], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """dockerd pulls the images, tags one twice, and saves them all (and one alone)."""
    require_binary(DOCKERD_BINARY, "dockerd not installed (oracle tier; CI=true makes this a failure)")
    require_binary(DOCKER_CLI, "docker CLI not installed (oracle tier; CI=true makes this a failure)")
    base = tmp_path_factory.mktemp("archives")
    pushed = {name: factory_suite[name] for name in NAMES}
    workdir = Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))
    daemon = Dockerd(base / "pulled", workdir)
    try:
        for image in pushed.values():
            daemon.docker("pull", image.reference)
        daemon.docker("tag", pushed["whiteouts"].reference, EXTRA_TAG)
        references = [image.reference for image in pushed.values()] + [EXTRA_TAG]
        daemon.docker("save", "-o", str(base / "all.tar"), *references)
        daemon.docker("save", "-o", str(base / "one.tar"), pushed["whiteouts"].reference)
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    yield {"base": base, "pushed": pushed, "references": references, "root": base / "pulled"}


def layer_digests(archive: Path) -> dict[str, list[str]]:
    """Config name → sha256 of each layer tar, read through manifest.json."""
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        found = {}
        for entry in manifest:
            digests = []
            for name in entry["Layers"]:
                member = tf.extractfile(name)
                assert member is not None
                digests.append("sha256:" + hashlib.file_digest(member, "sha256").hexdigest())
            found[entry["Config"].split("/")[-1].removesuffix(".json")] = digests
        return found


def test_emustore_load_equals_dockerd_load(
    saved: dict[str, object], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    archive = Path(str(saved["base"])) / "all.tar"
    daemon = dockerd_factory(tmp_path / "dockerd")
    daemon.docker("load", "-i", str(archive))
    daemon.stop()
    list(load(archive, tmp_path / "emustore"))
    differences = diff_trees(tmp_path / "dockerd", tmp_path / "emustore")
    assert differences == [], "\n".join(differences[:60])

    packed = tmp_path / "all.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes(), compresslevel=1))
    run = emustore("load", "-i", str(packed), "--root", str(tmp_path / "gzip"))
    assert run.returncode == 0, run.stderr
    expected = {f"Loaded image: {reference}" for reference in saved["references"]}  # type: ignore[attr-defined]
    assert set(run.stdout.decode().splitlines()) == expected  # docker save orders images at random
    zstd = tmp_path / "all.tar.zst"
    zstd.write_bytes(zstandard.ZstdCompressor().compress(archive.read_bytes()))
    run = emustore("load", "--root", str(tmp_path / "stdin"), stdin=zstd)
    assert run.returncode == 0, run.stderr
    for root in ("gzip", "stdin"):
        differences = diff_trees(tmp_path / "dockerd", tmp_path / root)
        assert differences == [], root + "\n" + "\n".join(differences[:60])


@pytest.mark.parametrize("version", ["26", "28"])
def test_emustore_load_equals_the_engines_load(
    version: str, saved: dict[str, object], engine_factory: Callable[[str, Path], Dockerd], tmp_path: Path
) -> None:
    """`emustore load --engine N` writes what dockerd N's `docker load` writes (engines.md dialects)."""
    archive = Path(str(saved["base"])) / "all.tar"
    daemon = engine_factory(version, tmp_path / "engine")
    daemon.docker("load", "-i", str(archive))
    daemon.stop()
    run = emustore("load", "-i", str(archive), "--root", str(tmp_path / "emustore"), "--engine", version)
    assert run.returncode == 0, run.stderr
    differences = diff_trees(tmp_path / "engine", tmp_path / "emustore")
    assert differences == [], "\n".join(differences[:60])


def test_emustore_save_layer_tars_equal_docker_save(saved: dict[str, object], tmp_path: Path) -> None:
    references = [str(r) for r in saved["references"]]  # type: ignore[attr-defined]
    ours = tmp_path / "ours.tar"
    save_to_path(Path(str(saved["root"])), references, ours)
    theirs = layer_digests(Path(str(saved["base"])) / "all.tar")
    assert layer_digests(ours) == theirs
    pushed: dict[str, PushedImage] = saved["pushed"]  # type: ignore[assignment]
    assert theirs[pushed["padding"].image_id.split(":")[1]] == list(pushed["padding"].diff_ids)
    # One image without repeated layers: the whole archive is byte for byte docker save's.
    run = emustore("save", "--root", str(saved["root"]), "-o", str(tmp_path / "one.tar"), pushed["whiteouts"].reference)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "one.tar").read_bytes() == (Path(str(saved["base"])) / "one.tar").read_bytes()


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_emustore_save_loads_into_a_fresh_dockerd(
    fmt: str, saved: dict[str, object], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    pushed: dict[str, PushedImage] = saved["pushed"]  # type: ignore[assignment]
    archive = tmp_path / "saved.tar"
    run = emustore("save", "--root", str(saved["root"]), "--format", fmt, "-o", str(archive), *saved["references"])  # type: ignore[misc]
    assert run.returncode == 0, run.stderr
    daemon = dockerd_factory(tmp_path / "dockerd")
    loaded = daemon.docker("load", "-i", str(archive)).stdout
    assert f"Loaded image: {EXTRA_TAG}" in loaded
    for name, image in pushed.items():
        inspect = json.loads(daemon.docker("image", "inspect", image.reference).stdout)[0]
        assert inspect["Id"] == image.image_id, name
        assert inspect["RootFS"]["Layers"] == list(image.diff_ids), name
    for name in RUNNABLE:
        ran = daemon.docker("run", "--rm", "--network", "none", pushed[name].reference, "sh", "-c", "echo ok")
        assert ran.stdout == "ok\n", name
    resaved = tmp_path / "resaved.tar"
    daemon.docker("save", "-o", str(resaved), pushed["duplicate_layers"].reference)
    assert list(layer_digests(resaved).values()) == [list(pushed["duplicate_layers"].diff_ids)]
    daemon.stop()


def test_a_built_image_keeps_its_parent_through_save_and_load(
    saved: dict[str, object], registry: RegistryServer, dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    """A classic `docker build` records a parent; docker save carries it, docker load writes it back."""
    base: PushedImage = saved["pushed"]["whiteouts"]  # type: ignore[index]
    builder = dockerd_factory(tmp_path / "builder")
    builder.docker("pull", base.reference)
    builder.docker("build", "-q", "-t", "built/child:v1", "-", input=f"FROM {base.reference}\nLABEL stage=child\n")
    builder.docker("save", "-o", str(tmp_path / "theirs.tar"), "built/child:v1", base.reference)
    builder.stop()
    with tarfile.open(tmp_path / "theirs.tar") as tf:
        entries = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    child = next(e for e in entries if "built/child:v1" in (e.get("RepoTags") or []))  # save's order is random
    assert child["Parent"] == base.image_id

    run = emustore("save", "--root", str(tmp_path / "builder"), "-o", str(tmp_path / "ours.tar"), "built/child:v1", base.reference)
    assert run.returncode == 0, run.stderr
    assert layer_digests(tmp_path / "ours.tar") == layer_digests(tmp_path / "theirs.tar")
    with tarfile.open(tmp_path / "ours.tar") as tf:
        ours = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    key = lambda e: e["Config"]  # noqa: E731
    assert sorted(ours, key=key) == sorted(entries, key=key)

    daemon = dockerd_factory(tmp_path / "dockerd")
    daemon.docker("load", "-i", str(tmp_path / "theirs.tar"))
    daemon.stop()
    # the child comes first in the archive: like dockerd, emustore links it once both are loaded
    run = emustore("load", "-i", str(tmp_path / "theirs.tar"), "--root", str(tmp_path / "emustore"))
    assert run.returncode == 0, run.stderr
    differences = diff_trees(tmp_path / "dockerd", tmp_path / "emustore")
    assert differences == [], "\n".join(differences[:60])
