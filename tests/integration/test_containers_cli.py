"""create, cp, ps, rm from the command line on an emustore-pulled root; fsck, explain and rmi
see the containers; failures leave the root as it was. Against a real registry (no dockerd)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import emustore
from emustore.fsck import check
from emustore.stores.docker.containerconfig import CreateOptions
from emustore.stores.docker.containers import ContainerStore
from tests.support.canary import changes, make_canary, snapshot
from tests.support.figures import record
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = pytest.mark.registry


def cli(root: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emustore", command, "--root", str(root), *args],
        capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> PushedImage:
    return busybox_image("docker", cmd=("sh",)).push(registry.host, "cli/busybox", "v1")


@pytest.fixture
def root(image: PushedImage, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    emustore.pull(image.reference, root=root)
    return root


def _snapshot(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "before"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    return copy


def test_create_cp_ps_rm(root: Path, image: PushedImage, tmp_path: Path) -> None:
    created = cli(root, "create", "--name", "web", "-e", "A=1", image.reference, "echo", "hello world")
    assert created.returncode == 0, created.stderr
    container_id = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    anonymous = cli(root, "create", image.reference).stdout.strip()

    ps = cli(root, "ps", "-a").stdout.splitlines()
    assert re.split(r"\s{2,}", ps[0]) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    row = re.split(r"\s{2,}", ps[2])
    assert row[:3] + row[4:] == [container_id[:12], image.reference, "\"echo 'hello world'\"", "Created", "web"]
    assert row[3].endswith(" ago")
    assert cli(root, "ps").stdout.splitlines()[1:] == []  # nothing runs
    assert cli(root, "ps", "-aq", "--no-trunc").stdout.split() == [anonymous, container_id]

    host = tmp_path / "f.txt"
    host.write_text("x")
    assert cli(root, "cp", str(host), "web:/bin/").returncode == 0
    upper = ContainerStore(root).stack(ContainerStore(root).find("web")).upper
    assert (upper / "bin" / "f.txt").read_text() == "x"
    missing = cli(root, "cp", str(host), "web:/nope/x")
    assert missing.returncode == 1 and "Could not find the file /nope" in missing.stderr
    assert check(root) == []

    used = cli(root, "rmi", image.reference)
    assert used.returncode != 0 and "container" in used.stderr
    assert cli(root, "rm", "web", anonymous[:5]).stdout.split() == ["web", anonymous[:5]]
    assert cli(root, "ps", "-aq").stdout == ""
    gone = cli(root, "rm", "web")
    assert (gone.returncode, gone.stderr) == (1, "emustore: No such container: web\n")
    assert check(root) == []
    assert cli(root, "rmi", image.reference).returncode == 0


def test_create_with_files_and_a_whiteout(root: Path, image: PushedImage, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "a.ini").write_text("a")
    result = cli(root, "create", "--add-file", f"{conf}:/etc/app", "--rm-file", "/bin/ls", image.reference)
    assert result.returncode == 0, result.stderr
    store = ContainerStore(root)
    upper = store.stack(store.find(result.stdout.strip())).upper
    assert (upper / "etc" / "app" / "a.ini").read_text() == "a"
    whiteout = (upper / "bin" / "ls").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0 and stat.S_IMODE(whiteout.st_mode) == 0
    assert check(root) == []
    walk = cli(root, "explain", image.reference).stdout
    assert "Container %s" % result.stdout.strip()[:12] in walk


def test_refusals_leave_the_root_unchanged(root: Path, image: PushedImage, tmp_path: Path) -> None:
    assert cli(root, "create", "--name", "web", image.reference).returncode == 0
    before = _snapshot(root, tmp_path)
    for args, message in (
        (["--name", "web", image.reference], 'Conflict. The container name "/web" is already in use'),
        (["--name", "a b", image.reference], "Invalid container name (a b)"),
        (["nosuch/image:v9"], "No such image: nosuch/image:v9"),
        (["--entrypoint", "", image.reference], "No command specified"),
        (["--rm-file", "/nope", image.reference], "No such file or directory in the container: /nope"),
        (["--add-file", "/definitely/missing:/x", image.reference], "no such file: /definitely/missing"),
    ):
        result = cli(root, "create", *args)
        assert result.returncode == 1 and result.stderr.startswith("emustore: " + message), (args, result.stderr)
        assert diff_trees(before, root) == [], args
        assert sorted(os.listdir(root / "containers")) == sorted(os.listdir(before / "containers"))


def test_failed_publication_leaves_nothing(root: Path, image: PushedImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(root, tmp_path)
    real_rename = os.rename

    def failing_rename(src: object, dst: object) -> None:
        if "/containers/" in str(dst):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError):
        ContainerStore(root).create(CreateOptions(image.reference))
    monkeypatch.undo()
    differences = [d for d in diff_trees(before, root) if not d.endswith("/committed (f)")]
    assert differences in ([], ["only in B: image/overlay2/layerdb/mounts (d)"])
    assert os.listdir(root / "containers") == [] and os.listdir(root / "image/overlay2/layerdb/mounts") == []
    assert os.listdir(root / "tmp" / "emustore-staging") == []
    assert check(root) == []


def _set_times(*paths: Path, when: float = 1_577_934_245.678) -> None:
    for path in paths:
        os.utime(path, (when + 100, when), follow_symlinks=False)


def test_cp_both_ways_like_docker_cp(root: Path, image: PushedImage, tmp_path: Path) -> None:
    """Dot forms name what docker names; times are the tar's (whole seconds, atime = mtime)."""
    assert cli(root, "create", "--name", "web", image.reference).returncode == 0
    host = tmp_path / "host"
    (host / "dir" / "inner").mkdir(parents=True)
    (host / "dir" / "inner" / "f").write_text("f\n")
    _set_times(host / "dir" / "inner" / "f", host / "dir" / "inner", host / "dir")
    for source, target in ((f"{host}/dir/inner/..", "web:/"), (f"{host}/dir/.", "web:/bin"), (f"{host}/dir/", "web:/new")):
        result = cli(root, "cp", source, target)
        assert result.returncode == 0, (source, result.stderr)
    store = ContainerStore(root)
    container = store.find("web")
    upper = store.stack(container).upper
    assert sorted(os.listdir(upper)) == ["bin", "dir", "new"]
    assert (upper / "bin" / "inner" / "f").read_text() == (upper / "new" / "inner" / "f").read_text() == "f\n"
    st = (upper / "dir" / "inner" / "f").stat()
    assert (st.st_mtime_ns, st.st_atime_ns) == (1_577_934_245 * 10**9,) * 2
    assert (upper / "dir").stat().st_atime_ns == 0

    out = tmp_path / "out"
    out.mkdir()
    for source, target in (("web:/etc/..", f"{out}/all"), ("web:/bin/.", f"{out}/bin"), ("web:bin/sh", f"{out}/"), ("web:/dir/inner/..", str(out))):
        result = cli(root, "cp", source, target)
        assert result.returncode == 0, (source, result.stderr)
    assert sorted(os.listdir(out)) == ["all", "bin", "dir", "sh"]
    assert os.readlink(out / "sh") == "busybox" and (out / "bin" / "busybox").is_file()
    assert sorted(os.listdir(out / "all")) == [".dockerenv", "bin", "dev", "dir", "etc", "new", "proc", "sys"]
    st = (out / "dir" / "inner" / "f").stat()
    assert (st.st_mtime_ns, st.st_atime_ns) == (1_577_934_245 * 10**9,) * 2
    for args, message in (
        (["web:/nope", str(out)], "No such container:path: web:/nope"),
        (["web:/bin/sh/", str(out)], "not a directory: web:/bin/sh/"),
        (["web:/bin", f"{out}/all/.dockerenv"], f"cannot copy a directory onto a file: {out}/all/.dockerenv"),
        (["web:/etc/hosts", f"{out}/missing/"], f"no such directory: {out}/missing/"),
        ([str(host), "web:/bin/sh/x"], "extraction point is not a directory: /bin/sh"),  # sh -> busybox
        ([str(host), "web:/nope/x"], "Could not find the file /nope in container"),
        (["web:/x", "web:/y"], "copying between containers is not supported"),
        ([str(host), str(out)], "must specify at least one container source"),
    ):
        result = cli(root, "cp", *args)
        assert (result.returncode, result.stderr) == (1, "emustore: %s\n" % message), args
    assert check(root) == []


def test_hostile_paths_stay_inside(hostile_image: PushedImage, module_canary: Path, tmp_path: Path) -> None:
    """Issue 13: `create --add-file LINK:/app --rm-file /app/x` and `cp` with `..` forms, through
    the image's links and links cp put there: each is contained or refused, and nothing outside
    what the command may write changes (the canaries, host files, image layers, overlay2/<m>/)."""
    root = tmp_path / "root"
    emustore.pull(hostile_image.reference, root=root)
    make_canary(tmp_path / "canary")
    host = tmp_path / "host"
    (host / "dir" / "inner").mkdir(parents=True)
    (host / "dir" / "inner" / "f").write_text("payload\n")
    (host / "link").symlink_to(module_canary)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert cli(root, "create", "--name", "ct", hostile_image.reference).returncode == 0
    store = ContainerStore(root)
    upper = store.stack(store.find("ct")).upper
    layer_dirs = [d for d in (root / "overlay2").iterdir() if d.name != "l"]  # the image's and c's
    cases = [
        (["create", "--add-file", f"{host}/link:/app", "--rm-file", "/app/decoy", hostile_image.reference], root),
        (["create", "--rm-file", "/abs/decoy", "--rm-file", "/rel/sub", hostile_image.reference], root),
        (["create", "--add-file", f"{host}/dir/inner/..:/rel", "--rm-file", "/deep/rel/decoy", hostile_image.reference], root),
        (["cp", f"{host}/link", "ct:/app"], upper),
        (["cp", f"{host}/dir", "ct:/app/sub"], upper),
        (["cp", f"{host}/dir/inner/..", "ct:/"], upper),
        (["cp", f"{host}/dir/inner/..", "ct:/rel/.."], upper),
        (["cp", f"{host}/dir/inner/f", "ct:/abs/"], upper),
        (["cp", f"{host}/dir/.", "ct:/deep/rel/sub/"], upper),
        (["cp", "ct:/etc/..", f"{dest}/x"], dest),
        (["cp", "ct:/data/sub/..", str(dest)], dest),
        (["cp", "ct:/abs/decoy", str(dest)], dest),
        (["cp", "ct:/rel/", str(dest)], dest),
        (["cp", "ct:/app/sub/inner", str(dest)], dest),
        (["cp", "ct://deep/../etc//hosts", str(dest)], dest),
    ]

    def witnesses(allowed: Path) -> list[dict[str, tuple[int, int, int, int, int, str]]]:
        """Everything but `allowed`; for create, the overlay2 dirs that were there (a new container adds its own)."""
        if allowed != root:
            return [snapshot(tmp_path, (root, allowed)), snapshot(module_canary), snapshot(root, (allowed, root / "tmp"))]
        inside = [snapshot(d, (upper, d / "committed")) for d in layer_dirs]  # create rewrites `committed`
        return [snapshot(tmp_path, (root, allowed)), snapshot(module_canary), *inside]

    figures = {"cases": 0, "refused": 0, "contained": 0, "outside_changes": 0}
    for args, allowed in cases:
        before = witnesses(allowed)
        result = cli(root, *args)
        changed = [c for b, a in zip(before, witnesses(allowed)) for c in changes(b, a)]
        figures["cases"] += 1
        figures["refused" if result.returncode else "contained"] += 1
        figures["outside_changes"] += len(changed)
        assert changed == [], (args, changed)
        assert result.returncode in (0, 1) and result.stderr.count("\n") == (result.returncode != 0), (args, result.stderr)
    record("containers CLI hostile paths", **figures)
    assert (module_canary / "decoy").read_text() == (tmp_path / "canary" / "decoy").read_text() == "do not touch\n"
    assert sorted(os.listdir(dest)) == ["data", "hosts"]  # /etc/.. refused whole: the image's links climb out of x
    assert os.readlink(dest / "data" / "link") == "/data/sub"
    assert sorted(os.listdir(upper)) == ["app", "dir"]  # /rel/.. is "/": dir again; /abs/ and /deep/rel/sub missing
    assert check(root) == []


def test_writes_refused_while_a_dockerd_owns_the_root(root: Path, image: PushedImage, tmp_path: Path) -> None:
    """create and cp into a container write where a live dockerd may have layers mounted: refused
    unless --force; reading (cp out, ps) is not. The stand-in is a process whose argv[0] is dockerd."""
    assert cli(root, "create", "--name", "web", image.reference).returncode == 0
    (tmp_path / "f").write_text("f\n")
    stand_in = subprocess.Popen(
        ["dockerd", "-c", "import time; time.sleep(120)", "--data-root", str(root)], executable=sys.executable
    )
    try:
        deadline = time.monotonic() + 30
        while b"--data-root" not in Path(f"/proc/{stand_in.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        before = _snapshot(root, tmp_path)
        for args in (["create", image.reference], ["create", "--rm-file", "/bin/ls", image.reference], ["cp", str(tmp_path / "f"), "web:/"]):
            result = cli(root, *args)
            assert result.returncode == 1 and "is in use by a running dockerd" in result.stderr, (args, result.stderr)
        assert diff_trees(before, root) == [] and os.listdir(root / "containers") == os.listdir(before / "containers")
        assert cli(root, "cp", "web:/bin/sh", str(tmp_path)).returncode == 0 and cli(root, "ps", "-a").returncode == 0
        assert cli(root, "cp", "--force", str(tmp_path / "f"), "web:/").returncode == 0
        assert cli(root, "create", "--force", image.reference).returncode == 0
    finally:
        stand_in.kill()
        stand_in.wait()
