"""images, inspect, tag, rmi, image prune and du from the command line on emustore-written roots,
the Python API, and the pytest plugin's docker_root fixture; against a real registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import emustore
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry
pytest_plugins = ["pytester"]


def emustore_cli(root: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emustore", *args, "--root", str(root)],
        capture_output=True, text=True, input=input, timeout=300,
    )


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image("docker", created="2023-01-02T03:04:05Z")
    child = base.copy(created="2023-06-01T00:00:00Z").layer(LayerBuilder().file("etc/child", b"child\n"))
    return {"base": base.push(registry.host, "cmd/base", "v1"), "child": child.push(registry.host, "cmd/child", "v1")}


@pytest.fixture(scope="module")
def template(images: dict[str, PushedImage], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store") / "root"
    for image in images.values():
        result = emustore.pull(image.reference, root=root)
        assert result.image_id == image.image_id
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(template), str(copy)], check=True)
    return copy


def test_images_table_quiet_digests_json_and_filter(images: dict[str, PushedImage], root: Path) -> None:
    base, child = images["base"], images["child"]
    lines = emustore_cli(root, "images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [child.repository, "v1", child.image_id[7:19]],
        [base.repository, "v1", base.image_id[7:19]],
    ]
    assert lines[1].endswith("years ago   1.98MB")
    assert emustore_cli(root, "images", "-q").stdout == f"{child.image_id[7:19]}\n{base.image_id[7:19]}\n"
    assert base.digest in emustore_cli(root, "images", "--digests").stdout
    rows = [json.loads(line) for line in emustore_cli(root, "images", "--format", "json").stdout.splitlines()]
    assert [(r["Repository"], r["Tag"], r["Size"]) for r in rows] == [(child.repository, "v1", "1.98MB"), (base.repository, "v1", "1.98MB")]
    filtered = emustore_cli(root, "images", "-q", base.repository).stdout
    assert filtered == base.image_id[7:19] + "\n"
    assert emustore_cli(root, "images", "nothing:here").stdout.count("\n") == 1


def test_inspect(images: dict[str, PushedImage], root: Path) -> None:
    result = emustore_cli(root, "inspect", images["child"].reference, images["base"].image_id[7:14])
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert [d["Id"] for d in documents] == [images["child"].image_id, images["base"].image_id]
    assert documents[0]["RepoDigests"] == [f"{images['child'].repository}@{images['child'].digest}"]
    assert documents[0]["RootFS"]["Layers"] == list(images["child"].diff_ids)
    assert documents[0]["GraphDriver"]["Data"]["LowerDir"].count(":") == 1
    missing = emustore_cli(root, "inspect", "nosuch")
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "[]\n", "emustore: No such image: nosuch\n")


def test_tag_rmi_messages_and_exit_codes(images: dict[str, PushedImage], root: Path) -> None:
    base, child = images["base"], images["child"]
    assert emustore_cli(root, "tag", base.reference, "local/base").returncode == 0
    assert emustore_cli(root, "images", "-q", "local/base:latest").stdout == base.image_id[7:19] + "\n"
    conflict = emustore_cli(root, "rmi", base.image_id[7:19])
    assert conflict.returncode == 1
    assert conflict.stderr == (
        f"emustore: conflict: unable to delete {base.image_id[7:19]} (must be forced) - image is referenced in multiple repositories\n"
    )
    both = emustore_cli(root, "rmi", "local/base", "nosuch", child.reference)
    assert both.returncode == 1 and both.stderr == "emustore: No such image: nosuch\n"
    assert both.stdout.splitlines()[:3] == [
        "Untagged: local/base:latest",
        f"Untagged: {child.reference}",
        f"Untagged: {child.repository}@{child.digest}",
    ]
    assert both.stdout.splitlines()[3:5] == [f"Deleted: {child.image_id}", "Deleted: " + _chain_top(child)]
    bad = emustore_cli(root, "tag", base.reference, "Bad/Name")
    assert bad.returncode == 1 and bad.stderr.startswith("emustore: invalid reference format")


def _chain_top(image: PushedImage) -> str:
    from emustore.stores.docker.layerdb import chain_ids

    return chain_ids(list(image.diff_ids))[-1]


def test_prune_asks_first_and_du(images: dict[str, PushedImage], root: Path) -> None:
    emustore_cli(root, "rmi", images["child"].reference)
    emustore.pull(images["child"].digest_reference, root=root)  # digest only: dangling
    declined = emustore_cli(root, "image", "prune", input="n\n")
    assert declined.stdout == "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    assert len(emustore.Store(root).images()) == 2
    verbose = emustore_cli(root, "du", "-v").stdout
    assert verbose.startswith("Images space usage:\n\nREPOSITORY")
    assert "Layers space usage:" in verbose and "<none>" in verbose
    pruned = emustore_cli(root, "image", "prune", input="y\n")
    assert "Deleted Images:\nuntagged: " in pruned.stdout and pruned.stdout.endswith("Total reclaimed space: 6B\n")
    assert [i.id for i in emustore.Store(root).images()] == [images["base"].image_id]
    summary = emustore_cli(root, "du").stdout.splitlines()
    assert summary[1].split() == ["Images", "1", "0", "1.982MB", "1.982MB", "(100%)"]


def test_api_store(images: dict[str, PushedImage], root: Path) -> None:
    store = emustore.Store(root)
    assert [i.repo_tags for i in store.images()] == [[images["child"].reference], [images["base"].reference]]
    assert store.tag(images["base"].reference, "api/tag:one") == "api/tag:one"
    assert store.inspect("api/tag:one")["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    assert [str(r) for r in store.remove("api/tag:one")] == ["Untagged: api/tag:one"]
    assert store.prune().records == []
    assert store.disk_usage().layers_size == store.images()[0].size  # the child's chain holds every layer


@pytest.fixture
def docker_root_reference(images: dict[str, PushedImage]) -> str:
    return images["child"].reference


def test_docker_root_fixture_gives_a_private_copy(docker_root: emustore.Store, images: dict[str, PushedImage]) -> None:
    assert [i.id for i in docker_root.images()] == [images["child"].image_id]
    docker_root.remove(images["child"].reference)
    assert docker_root.images() == []


def test_docker_root_marker_and_parameter(pytester: pytest.Pytester, images: dict[str, PushedImage]) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.docker_root("{images['base'].reference}")
        def test_marker(docker_root):
            assert [i.repo_tags for i in docker_root.images()] == [["{images['base'].reference}"]]

        @pytest.mark.parametrize("docker_root", ["{images['child'].reference}"], indirect=True)
        def test_parameter(docker_root):
            assert len(docker_root.images()) == 1
            assert (docker_root.root / "image/overlay2/repositories.json").is_file()

        @pytest.mark.docker_root("{images['base'].reference}", engine="28")
        def test_engine(docker_root):
            assert (docker_root.root / "engine-id").stat().st_mode & 0o777 == 0o600

        @pytest.mark.docker_root("{images['base'].reference}")
        def test_default_engine(docker_root):
            assert not (docker_root.root / "engine-id").exists()

        def test_missing(docker_root):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*docker_root needs an image*"])
