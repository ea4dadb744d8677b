"""`emustore pull` from the command line against a real registry: output, idempotence, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry


def emustore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=300)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path below the root except dockerd's scratch dir tmp/: mode and content hash."""
    found: dict[str, tuple[int, str]] = {}
    if not root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d != "tmp"]
        for name in dirnames + filenames:
            path = here / name
            st = os.lstat(path)
            if os.path.islink(path):
                content = os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = ""
            found[str(path.relative_to(root))] = (st.st_mode, content)
    return found


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, PushedImage]:
    base = busybox_image("docker")
    child = base.copy().layer(LayerBuilder().file("etc/child", b"child\n"), created_by="child")
    return {
        "base": base.push(registry.host, "cli/base", "v1"),
        "child": child.push(registry.host, "cli/child", "v1"),
        "latest": base.push(registry.host, "cli/base", "latest"),
    }


def test_pull_output_like_docker(images: dict[str, PushedImage], tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = emustore("pull", images["base"].reference, "--root", str(root))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "v1: Pulling from cli/base"
    assert sum(line.endswith(": Pull complete") for line in lines) == 2
    assert lines[-3] == "Digest: " + images["base"].digest
    assert lines[-2] == f"Status: Downloaded newer image for {images['base'].reference}"
    assert lines[-1] == images["base"].reference

    child = emustore("pull", images["child"].reference, "--root", str(root))
    assert child.returncode == 0, child.stderr
    assert sum(line.endswith(": Already exists") for line in child.stdout.splitlines()) == 2

    again = emustore("pull", images["base"].reference, "--root", str(root))
    assert again.stdout.splitlines()[-2] == f"Status: Image is up to date for {images['base'].reference}"


def test_default_tag_and_quiet(images: dict[str, PushedImage], tmp_path: Path, registry: RegistryServer) -> None:
    result = emustore("pull", f"{registry.host}/cli/base", "--root", str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Using default tag: latest"
    quiet = emustore("pull", "-q", images["child"].reference, "--root", str(tmp_path / "root"))
    assert quiet.stdout == images["child"].reference + "\n"


def test_pulling_twice_changes_nothing(images: dict[str, PushedImage], tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert emustore("pull", images["child"].reference, "--root", str(root)).returncode == 0
    before = snapshot(root)
    assert emustore("pull", images["child"].reference, "--root", str(root)).returncode == 0
    assert snapshot(root) == before


def _corrupt_first_layer(registry: RegistryServer, image: PushedImage) -> None:
    digest = image.layer_digests[-1].split(":")[1]
    data = registry.workdir / "storage/docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "case",
    ["malformed", "uppercase", "unknown-repository", "unknown-tag", "unreachable", "digest-mismatch"],
)
def test_bad_input_fails_cleanly(case: str, registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    existing = busybox_image("docker").push(registry.host, "cli/existing", "v1")
    assert emustore("pull", existing.reference, "--root", str(root)).returncode == 0
    reference = {
        "malformed": f"{registry.host}/bad::ref",
        "uppercase": f"{registry.host}/Upper/Case:v1",
        "unknown-repository": f"{registry.host}/no/such:v1",
        "unknown-tag": f"{registry.host}/cli/existing:v9",
        "unreachable": "127.0.0.1:1/cli/existing:v1",
    }.get(case)
    if case == "digest-mismatch":
        image = ImageBuilder().layer(LayerBuilder().file("corrupt/me", os.urandom(4096)), created_by="x")
        pushed = image.push(registry.host, "cli/corrupt", "v1")
        _corrupt_first_layer(registry, pushed)
        reference = pushed.reference
    before = snapshot(root)
    result = emustore("pull", reference, "--root", str(root))
    assert result.returncode != 0
    assert result.stderr.startswith("emustore: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot(root) == before
    assert not list((root / "tmp").glob("emustore-staging/*"))
    if case == "digest-mismatch":
        assert "verification failed for digest" in result.stderr


def test_failed_pull_into_a_new_root_leaves_nothing(tmp_path: Path, registry: RegistryServer) -> None:
    root = tmp_path / "new"
    result = emustore("pull", f"{registry.host}/no/such:v1", "--root", str(root))
    assert result.returncode != 0
    assert not root.exists()


def test_error_messages_name_the_problem(registry: RegistryServer, tmp_path: Path) -> None:
    busybox_image("docker").push(registry.host, "cli/msg", "v1")
    unknown = emustore("pull", f"{registry.host}/cli/msg:v9", "--root", str(tmp_path))
    assert f"manifest for {registry.host}/cli/msg:v9 not found" in unknown.stderr
    malformed = emustore("pull", "UPPER", "--root", str(tmp_path))
    assert "invalid reference format" in malformed.stderr


def test_pull_several_images_in_one_process(images: dict[str, PushedImage], tmp_path: Path) -> None:
    """Arguments and -f FILE: each image pulled in turn, a shared layer downloaded once, a bad
    reference or a missing image reported on its own line without stopping the others."""
    listed = tmp_path / "images.txt"
    missing = images["base"].reference.replace("cli/base", "cli/nothere")
    listed.write_text(f"# seed list\n\n{images['child'].reference}  # the child\n{missing}\nNot/A:Reference!\n")
    root = tmp_path / "root"
    run = emustore("pull", images["base"].reference, "-f", str(listed), "--root", str(root))
    assert run.returncode == 1
    errors = run.stderr.splitlines()
    assert len(errors) == 3 and errors[-1] == "emustore: 2 of 4 images not pulled", run.stderr
    assert errors[0].startswith(f"emustore: {missing}: ") and errors[1].startswith("emustore: Not/A:Reference!: ")
    base_layer = images["base"].layer_digests[0][7:19]
    assert run.stdout.count(f"{base_layer}: Pull complete") == 1
    assert f"{base_layer}: Already exists" in run.stdout
    listing = emustore("images", "--root", str(root), "--format", "json")
    pulled = {"%s:%s" % (row["Repository"], row["Tag"]) for row in map(json.loads, listing.stdout.splitlines())}
    assert pulled == {images["base"].reference, images["child"].reference}


def test_pull_needs_a_reference(tmp_path: Path) -> None:
    run = emustore("pull", "--root", str(tmp_path / "root"))
    assert run.returncode == 125 and run.stderr.count("\n") == 1 and "requires at least 1 argument" in run.stderr
    assert not (tmp_path / "root").exists()
