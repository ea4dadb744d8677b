"""explain against real engines: the walk of a root dockerd wrote, the overlay mount options it
prints against the mount the daemon really made for a container (/proc/self/mountinfo: the
daemons run in this mount namespace; and `docker inspect`), and the merged view against
`docker export` of that container."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.api import Store
from emustore.explain.walk import Walk
from tests.integration.test_explain import emustore, expected_facts, teaching_image
from tests.integration.test_fsck import fsck_image
from tests.support.dockerd import Dockerd
from tests.support.imagefactory import LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]

# What dockerd's init layer adds to every container (and the dirs on the way to them).
INIT_PATHS = {"/dev", "/dev/pts", "/dev/shm", "/dev/console", "/proc", "/sys", "/.dockerenv", "/etc",
              "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/mtab"}


def test_explain_walks_a_dockerd_root(registry: RegistryServer, tmp_path: Path, dockerd_factory: Callable[[Path], Dockerd]) -> None:
    pushed = fsck_image().push(registry.host, "explain-oracle/three", "v1")  # type: ignore[attr-defined]
    root = tmp_path / "dockerd-root"
    daemon = dockerd_factory(root)
    daemon.docker("pull", pushed.reference)
    daemon.docker("create", "--network", "none", pushed.reference, "sh")
    daemon.stop()
    result = emustore("explain", pushed.reference, "--root", str(root))
    assert result.returncode == 0, result.stderr
    for fact in expected_facts(root, pushed):
        assert fact in result.stdout, f"{fact!r} not in:\n{result.stdout}"
    assert "also      work/, committed" in result.stdout.split("(top)")[1]  # the container committed the top layer


def kernel_mount_options(merged_dir: Path) -> dict[str, str]:
    """The super options of the overlay mounted at `merged_dir`, as /proc/self/mountinfo shows them."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4].encode().decode("unicode_escape") == str(merged_dir):
            super_options = line.split(" - ", 1)[1].split(" ", 2)[2]
            return dict(option.partition("=")[::2] for option in super_options.split(","))
    raise AssertionError(f"nothing mounted at {merged_dir}")


def run_and_explain(daemon: Dockerd, pushed: PushedImage, root: Path) -> tuple[str, Walk]:
    daemon.docker("pull", pushed.reference)
    cid = daemon.docker("run", "-d", "--network", "none", "--entrypoint", "/bin/busybox", pushed.reference, "sleep", "600").stdout.strip()
    walk = Store(root).explain(pushed.reference)
    return cid, walk


def check_mount(daemon: Dockerd, cid: str, walk: Walk) -> str:
    """The container's mount as explain gives it equals the kernel's and docker inspect's; the
    mount predicted for a new container of the image is the same with its ids filled in."""
    (container,) = walk.containers
    assert container.id == cid and container.mount is not None and container.init is not None
    mount = container.mount
    ours = dict(option.partition("=")[::2] for option in mount.options.split(","))
    merged = walk.root / "overlay2" / container.upper.dir.name / "merged"  # type: ignore[union-attr]
    kernel = kernel_mount_options(merged)
    for key in ("lowerdir", "upperdir", "workdir"):
        assert ours[key] == kernel[key], f"{key}: explain {ours[key]!r}, kernel {kernel[key]!r}"
    if "index" in kernel:
        assert ("index=off" in mount.options) == (kernel["index"] == "off")
    data = daemon.api("GET", f"/v1.41/containers/{cid}/json").json()["GraphDriver"]["Data"]
    home = walk.root / "overlay2"
    resolved = [os.path.realpath(home / element) for element in mount.lowerdirs()]
    assert resolved == data["LowerDir"].split(":")
    assert str(home / mount.dir_id / "diff") == data["UpperDir"]
    assert walk.mount is not None
    predicted = walk.mount.options.replace("<INIT-LINK>", container.init.link_id or "?")
    assert predicted.replace("<CONTAINER-LAYER-ID>", mount.dir_id) == mount.options
    return mount.options


@pytest.mark.parametrize("engine", ["20.10", "26", "28"])
def test_mount_options_and_merged_view_are_the_engines(
    engine: str, registry: RegistryServer, scratch: Path, engine_factory: Callable[[str, Path], Dockerd]
) -> None:
    pushed = teaching_image().push(registry.host, "explain-oracle/teach", "v1")
    root = scratch / "root"
    daemon = engine_factory(engine, root)
    cid, walk = run_and_explain(daemon, pushed, root)
    options = check_mount(daemon, cid, walk)
    assert not options.startswith("lowerdir=l/"), "short options use absolute paths"
    assert walk.engine_id == (None if engine == "20.10" else (root / "engine-id").read_text().strip())

    exported = tarfile.open(fileobj=io.BytesIO(daemon.api("GET", f"/v1.41/containers/{cid}/export").content))
    seen = {}
    for member in exported:
        path = "/" + member.name.strip("/")
        if path != "/" and path not in INIT_PATHS:
            kind = "dir" if member.isdir() else "symlink" if member.issym() else "file" if member.isfile() else "other"
            seen[path] = (kind, member.size if kind == "file" else 0, member.linkname if kind == "symlink" else None,
                          member.mode & 0o7777, member.uid, member.gid)
    assert walk.files is not None
    ours = {}
    for merged in walk.files.merged:
        entry = merged.entry
        if entry.path not in INIT_PATHS:
            kind = entry.kind if entry.kind in ("dir", "symlink", "file") else "other"
            ours[entry.path] = (kind, entry.size if kind == "file" else 0, entry.target, stat.S_IMODE(entry.mode), entry.uid, entry.gid)
    assert ours == seen
    assert "/etc/os-release" in {m.entry.path for m in walk.files.merged} and "/w/gone" not in seen


def test_long_mount_options_use_relative_links_as_dockerd_does(
    registry: RegistryServer, scratch: Path, dockerd_factory: Callable[[Path], Dockerd]
) -> None:
    image = busybox_image("docker")
    for n in range(56):
        image = image.layer(LayerBuilder().file(f"deep/{n:02d}", b"%d\n" % n), created_by=f"layer {n}")
    pushed = image.push(registry.host, "explain-oracle/deep", "v1")
    root = scratch / ("root-with-a-longer-name-" + "x" * 20)
    daemon = dockerd_factory(root)
    cid, walk = run_and_explain(daemon, pushed, root)
    assert walk.mount is not None and walk.mount.relative and walk.mount.absolute_length > os.sysconf("SC_PAGE_SIZE") - 1
    options = check_mount(daemon, cid, walk)
    assert options.startswith("index=off,lowerdir=l/" if "index=off" in options else "lowerdir=l/")
    assert walk.look is not None and walk.look.command().startswith(f"mkdir -p /mnt/emustore-look && cd {root / 'overlay2'} && mount")
    target = scratch / "look"
    target.mkdir()
    walk.look.run(target)  # the long read-only mount works too, from overlay2/ with relative links
    try:
        shown = sorted("/" + str(p.relative_to(target)) for p in target.rglob("*"))
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert walk.files is not None and shown == sorted(m.entry.path for m in walk.files.merged)
    assert len(shown) == 1 + 1 + 5 + 1 + 56  # bin/, busybox, 5 applets, deep/ and its 56 files
