"""Containers without a daemon: config merge and JSON, names, the overlay view (resolution inside the
container, listing) and init layer, docker cp's rules and what a copy carries, ps text and STATUS."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath

import pytest

from emustore.commands.ps import command_text, ellipsis
from emustore.stores.docker.containerconfig import (
    CreateOptions,
    NoCommand,
    container_docs,
    merged_config,
)
from emustore.stores.docker.containerfs import OPAQUE_XATTR, ContainerPathError, LayerStack, write_init_layer
from emustore.stores.docker.containernames import InvalidName, check_name, generate_name
from emustore.errors import StoreError
from emustore.stores.docker.containers import Container, ContainerStore, copy_in, copy_out, overlay2_dir_of_link
from emustore.stores.docker.containerstate import is_running, status
from emustore.stores.docker.copypaths import CONTENTS, CopyError, Target, container_source, host_source, placement
from emustore.stores.docker.goconfig import ZERO_TIME, GoTime, rfc3339nano
from tests.support.imagefactory import CAP_NET_BIND_SERVICE

ID = "ab" * 32
IMAGE = {"Env": ["PATH=/usr/bin", "LANG=C"], "Cmd": ["sh"], "Labels": {"z": "1", "a": "2"}}


def test_env_user_first_then_image_keys_not_overridden() -> None:
    config = merged_config(CreateOptions("img", env=("FOO=1", "PATH=/x")), IMAGE, "h")
    assert config["Env"] == ["FOO=1", "PATH=/x", "LANG=C"]
    assert config["Labels"] == {"a": "2", "z": "1"}
    assert list(config["Labels"]) == ["a", "z"]


def test_entrypoint_option_drops_the_image_cmd() -> None:
    image = {**IMAGE, "Entrypoint": ["/bin/sh", "-c"]}
    assert merged_config(CreateOptions("img"), image, "h")["Cmd"] == ["sh"]
    config = merged_config(CreateOptions("img", entrypoint="/bin/ls"), image, "h")
    assert (config["Entrypoint"], config["Cmd"]) == (["/bin/ls"], None)
    config = merged_config(CreateOptions("img", entrypoint="", cmd=("echo",)), image, "h")
    assert (config["Entrypoint"], config["Cmd"]) == (None, ["echo"])
    with pytest.raises(NoCommand, match="No command specified"):
        merged_config(CreateOptions("img", entrypoint=""), image, "h")


def test_config_v2_fields_and_bytes() -> None:
    docs = container_docs(CreateOptions("busybox", name="web", cmd=("-c", "x")), ID, 1_700_000_000_120_000_000, "web", "sha256:" + "c" * 64, {"Entrypoint": ["/bin/sh"], "Cmd": ["sh"]})
    assert docs.config_v2.endswith(b"}\n") and docs.hostconfig.endswith(b"}\n")
    doc = json.loads(docs.config_v2)
    assert list(doc)[:8] == ["StreamConfig", "State", "ID", "Created", "Managed", "Path", "Args", "Config"]
    assert doc["Created"] == "2023-11-14T22:13:20.12Z"
    assert (doc["Path"], doc["Args"], doc["Name"]) == ("/bin/sh", ["-c", "x"], "/web")
    assert doc["Config"]["Hostname"] == ID[:12] and doc["Config"]["Image"] == "busybox"
    assert doc["NetworkSettings"]["IsAnonymousEndpoint"] is False
    assert json.loads(docs.hostconfig)["ShmSize"] == 64 * 1024 * 1024


def test_rfc3339nano_trims_the_fraction() -> None:
    assert rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert rfc3339nano(1_500_000_000) == "1970-01-01T00:00:01.5Z"


def test_names() -> None:
    assert check_name("/web-1") == "web-1"
    for bad in ("a", "-x", "a b", "x/y"):
        with pytest.raises(InvalidName):
            check_name(bad)
    taken = {"x"}
    name = generate_name(taken)
    assert "_" in name and name not in taken


def test_ps_command_text() -> None:
    container = Container(ID, {"Path": "/bin/sh", "Args": ["-c", "echo hi", "it's"]}, "m", "m-init", "p")
    assert command_text(container) == "/bin/sh -c 'echo hi' 'it'\\''s'"
    assert ellipsis("/bin/sh -c 'cat /greeting.txt'", 20) == "/bin/sh -c 'cat /gr…"


def _stack(tmp_path: Path, layers: int) -> LayerStack:
    diffs = [tmp_path / ("d%d" % i) for i in range(layers)]
    for diff in diffs:
        diff.mkdir()
    return LayerStack(diffs)


def test_lookup_honours_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 3)
    upper, middle, base = stack.diffs
    (base / "etc").mkdir()
    (base / "etc" / "a").write_text("a")
    (base / "etc" / "b").write_text("b")
    (middle / "etc").mkdir()
    os.mknod(middle / "etc" / "a", stat.S_IFCHR, os.makedev(0, 0))
    assert stack.lookup(PurePosixPath("etc/a")) is None
    assert stack.lookup(PurePosixPath("etc/b")) == base / "etc" / "b"
    os.setxattr(middle / "etc", OPAQUE_XATTR, b"y")
    assert stack.lookup(PurePosixPath("etc/b")) is None
    assert stack.is_dir(PurePosixPath("etc"))


def test_remove_writes_a_whiteout_and_add_copies_parents_up(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    upper, base = stack.diffs
    (base / "srv").mkdir(mode=0o750)
    os.chown(base / "srv", 7, 8)
    (base / "srv" / "old").write_text("old")
    stack.delete("/srv/old")
    st = (upper / "srv" / "old").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_IMODE((upper / "srv").stat().st_mode) == 0o750 and (upper / "srv").stat().st_uid == 7
    host = tmp_path / "new.txt"
    host.write_text("new")
    os.chmod(host, 0o640)
    copy_in(stack, str(host), "/srv/new.txt")
    assert (upper / "srv" / "new.txt").read_text() == "new"
    assert stat.S_IMODE((upper / "srv" / "new.txt").stat().st_mode) == 0o640
    with pytest.raises(ContainerPathError, match="No such file or directory in the container: /srv/missing"):
        stack.delete("/srv/missing")
    with pytest.raises(ContainerPathError, match="root directory"):
        stack.delete("/srv/../..")


def test_add_over_removed_dir_makes_it_opaque(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    upper, base = stack.diffs
    (base / "data").mkdir()
    (base / "data" / "x").write_text("x")
    stack.delete("/data")
    source = tmp_path / "data"
    source.mkdir()
    (source / "y").write_text("y")
    copy_in(stack, str(source), "/data")
    assert os.getxattr(upper / "data", OPAQUE_XATTR) == b"y"
    assert stack.lookup(PurePosixPath("data/x")) is None
    assert stack.children(PurePosixPath("data")) == ["y"]


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "l:" + os.readlink(path) if path.is_symlink() else ("d" if path.is_dir() else "f")
        out[str(path.relative_to(root))] = "%s %04o %d:%d" % (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def test_init_layer_on_an_empty_image(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    write_init_layer(stack)
    assert _tree(stack.upper) == {
        ".dockerenv": "f 0755 0:0", "dev": "d 0755 0:0", "dev/console": "f 0755 0:0", "dev/pts": "d 0755 0:0",
        "dev/shm": "d 0755 0:0", "etc": "d 0755 0:0", "etc/hostname": "f 0755 0:0", "etc/hosts": "f 0755 0:0",
        "etc/mtab": "l:/proc/mounts 0777 0:0", "etc/resolv.conf": "f 0755 0:0", "proc": "d 0755 0:0", "sys": "d 0755 0:0",
    }


def test_init_layer_replaces_files_and_symlinks_keeps_dirs(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    base = stack.diffs[1]
    (base / "usr" / "etc").mkdir(parents=True)
    (base / "etc").symlink_to("usr/etc")
    (base / "proc").mkdir(mode=0o555)
    (base / "dev").mkdir(mode=0o700)
    os.chown(base / "dev", 3, 3)
    (base / "dev" / "console").write_text("c")
    write_init_layer(stack)
    tree = _tree(stack.upper)
    assert "proc" not in tree
    assert tree["dev"] == "d 0700 3:3" and tree["dev/console"] == "f 0755 0:0"
    assert tree["etc"] == "d 0755 0:0" and os.getxattr(stack.upper / "etc", OPAQUE_XATTR) == b"y"
    assert tree["etc/mtab"] == "l:/proc/mounts 0777 0:0"


def test_trailing_root_is_taken_from_the_command() -> None:
    from emustore.commands.create import trailing_root

    assert trailing_root(["echo", "hi", "--root", "/r"], None) == (["echo", "hi"], "/r")
    assert trailing_root(["--root=/r"], "/env") == ([], "/r")
    assert trailing_root(["ls", "--root"], "/env") == (["ls", "--root"], "/env")


def test_copy_refuses_special_files_before_writing(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "ok").write_text("x")
    os.mkfifo(source / "sub" / "z-fifo")
    with pytest.raises(CopyError, match="only files, directories and symlinks can be copied: .*z-fifo"):
        copy_in(stack, str(source), "/")
    assert os.listdir(stack.upper) == []


# the merged view: resolution inside the container, listing


def test_resolve_follows_symlinks_inside_the_container(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 3)
    upper, middle, base = stack.diffs
    (base / "usr" / "lib").mkdir(parents=True)
    (base / "usr" / "lib" / "f").write_text("f")
    (base / "lib").symlink_to("usr/lib")
    (middle / "abs").symlink_to("/usr")
    (middle / "up").symlink_to("../../../../usr")  # ".." stops at the container's root
    (upper / "loop").symlink_to("loop")
    assert stack.resolve("/lib/f") == PurePosixPath("usr/lib/f")
    assert stack.resolve("abs/lib/../lib/f") == PurePosixPath("usr/lib/f")
    assert stack.resolve("/up/lib", follow_last=True) == PurePosixPath("usr/lib")
    assert stack.resolve("/lib") == PurePosixPath("lib")  # the last component is kept ...
    assert stack.resolve("/lib", follow_last=True) == PurePosixPath("usr/lib")  # ... unless asked
    assert stack.resolve("/usr/lib/../../../..") == PurePosixPath(".")  # cleaned first, as docker does
    with pytest.raises(ContainerPathError, match="Too many levels of symbolic links in the container: /loop"):
        stack.resolve("/loop/x")
    os.mknod(upper / "lib", stat.S_IFCHR, os.makedev(0, 0))  # a whiteout hides the link
    assert stack.resolve("/lib/f") == PurePosixPath("lib/f") and stack.lookup(PurePosixPath("lib/f")) is None


def test_lookup_never_goes_through_a_symlink_on_the_host(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "decoy").write_text("x")
    (stack.diffs[1] / "a").symlink_to(outside)
    (stack.upper / "b").symlink_to(outside)
    for name in ("a", "b"):
        assert stack.lookup(PurePosixPath(name, "decoy")) is None
        assert stack.lookup(PurePosixPath(name, "decoy"), below_upper=True) is None
        assert stack.children(PurePosixPath(name)) == []


def test_children_merge_layers(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 3)
    upper, middle, base = stack.diffs
    for diff, names in ((base, "abc"), (middle, "cd"), (upper, "e")):
        (diff / "dir").mkdir()
        for name in names:
            (diff / "dir" / name).write_text(name)
    os.mknod(middle / "dir" / "a", stat.S_IFCHR, os.makedev(0, 0))
    assert stack.children(PurePosixPath("dir")) == ["b", "c", "d", "e"]
    assert stack.lookup(PurePosixPath("dir/c")) == middle / "dir" / "c"
    os.setxattr(middle / "dir", OPAQUE_XATTR, b"y")
    assert stack.children(PurePosixPath("dir")) == ["c", "d", "e"]


# docker cp's rules


def _target(path: str, exists: bool, is_dir: bool, asserts_dir: bool = False) -> Target:
    return Target(path, exists, is_dir, asserts_dir)


def test_placement_follows_docker_cp() -> None:
    assert placement(_target("/d", True, True), False, "f", "x") == ("/d", "f")
    assert placement(_target("/d", True, True), True, CONTENTS, "x") == ("/d", ".")
    assert placement(_target("/d/f", True, False), False, "g", "x") == ("/d", "f")
    assert placement(_target("/d/new", False, False), True, "src", "x") == ("/d", "new")
    assert placement(_target("/d/new", False, False, True), True, CONTENTS, "x") == ("/d", "new")
    with pytest.raises(CopyError, match="cannot copy a directory onto a file: x"):
        placement(_target("/d/f", True, False), True, "src", "x")
    with pytest.raises(CopyError, match="no such directory: x"):
        placement(_target("/d/new", False, False, True), False, "f", "x")
    with pytest.raises(CopyError, match="not a usable name"):
        placement(_target("/d", True, True), False, "..", "x")


def test_host_source_names(tmp_path: Path) -> None:
    (tmp_path / "dir" / "inner").mkdir(parents=True)
    (tmp_path / "file").write_text("f")
    (tmp_path / "dirlink").symlink_to("dir")
    (tmp_path / "filelink").symlink_to("file")
    base = str(tmp_path)
    for text, path, is_dir, name in (
        (base + "/dir", "dir", True, "dir"),
        (base + "/dir/inner/..", "dir", True, "dir"),  # the real name, never ".."
        (base + "/dir/inner/../", "dir", True, "dir"),
        (base + "/dir/.", "dir", True, CONTENTS),
        (base + "//dir//inner", "dir/inner", True, "inner"),
        (base + "/dirlink", "dirlink", False, "dirlink"),  # a symlink as itself
        (base + "/dirlink/", "dir", True, "dirlink"),  # followed, under the name given
        (base + "/dirlink/inner/..", "dir", True, "dir"),
        (base + "/filelink", "filelink", False, "filelink"),
    ):
        found = host_source(text)
        assert (found.path, found.is_dir, found.name) == (tmp_path / path, is_dir, name), text
    assert host_source("/").name == CONTENTS
    for text, message in ((base + "/filelink/", "not a directory"), (base + "/file/.", "not a directory"), (base + "/nope", "No such file")):
        with pytest.raises(CopyError, match=message):
            host_source(text)


def test_container_source_names(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    base = stack.diffs[1]
    (base / "data" / "sub").mkdir(parents=True)
    (base / "data" / "link").symlink_to("/data/sub")
    for text, rel, is_dir, name in (
        ("/etc/..", ".", True, CONTENTS),
        ("/data/sub/..", "data", True, "data"),
        ("data/.", "data", True, CONTENTS),
        ("/data/link", "data/link", False, "link"),
        ("/data/link/", "data/sub", True, "link"),
        ("//data//link/.", "data/sub", True, CONTENTS),
    ):
        found = container_source(stack, text, "c:" + text)
        assert (found.rel, found.is_dir, found.name) == (PurePosixPath(rel), is_dir, name), text
    with pytest.raises(CopyError, match="No such container:path: c:/data/nope"):
        container_source(stack, "/data/nope", "c:/data/nope")


def _times(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return st.st_atime_ns, st.st_mtime_ns


def test_copies_carry_what_docker_cp_carries(tmp_path: Path) -> None:
    """Whole-second mtimes, atime = mtime (dirs: the epoch), modes, hard links, security.capability
    and no other xattr, owners inward only."""
    stack = _stack(tmp_path, 2)
    source = tmp_path / "src"
    (source / "d").mkdir(parents=True)
    (source / "d" / "f").write_text("f")
    os.link(source / "d" / "f", source / "d" / "hard")
    (source / "d" / "l").symlink_to("f")
    os.chown(source / "d" / "f", 1234, 567)
    os.chmod(source / "d" / "f", 0o4751)
    os.chmod(source / "d", 0o710)
    os.setxattr(source / "d" / "f", "security.capability", CAP_NET_BIND_SERVICE)
    os.setxattr(source / "d" / "f", "user.note", b"stays behind")
    when = 1_577_934_245_678_901_234  # 2020-01-02T03:04:05.678901234Z
    for path in (source / "d" / "f", source / "d" / "l", source / "d"):
        os.utime(path, ns=(when + 10**9, when), follow_symlinks=False)
    second = when // 10**9 * 10**9
    copy_in(stack, str(source / "d"), "/d")
    inside = stack.upper / "d"
    assert _times(inside / "f") == _times(inside / "l") == (second, second)
    assert _times(inside) == (0, second)
    assert (inside / "f").stat().st_ino == (inside / "hard").stat().st_ino
    assert (stat.S_IMODE((inside / "f").stat().st_mode), (inside / "f").stat().st_uid) == (0o4751, 1234)
    assert stat.S_IMODE(inside.stat().st_mode) == 0o710
    assert os.listxattr(inside / "f") == ["security.capability"]  # set after the chown, which drops it

    out = tmp_path / "out"
    out.mkdir()
    copy_out(stack, "/d", str(out), "c:/d")
    assert _times(out / "d" / "f") == _times(out / "d" / "l") == (second, second) and _times(out / "d") == (0, second)
    assert (out / "d" / "f").stat().st_ino == (out / "d" / "hard").stat().st_ino
    assert ((out / "d" / "f").stat().st_uid, stat.S_IMODE((out / "d" / "f").stat().st_mode)) == (os.getuid(), 0o4751)
    assert os.readlink(out / "d" / "l") == "f"
    assert os.getxattr(out / "d" / "f", "security.capability") == CAP_NET_BIND_SERVICE


def test_conflicts_and_escaping_links_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    (stack.diffs[1] / "etc" / "x").mkdir(parents=True)
    source = tmp_path / "etc"
    (source / "a").mkdir(parents=True)
    (source / "a" / "f").write_text("f")
    (source / "x").write_text("file over a dir")
    with pytest.raises(CopyError, match="cannot overwrite directory /etc/x with a non-directory"):
        copy_in(stack, str(source), "/")
    (source / "x").unlink()
    (source / "y").symlink_to("../../up")
    with pytest.raises(CopyError, match=r"invalid symlink /etc/y -> \.\./\.\./up \(it leaves /etc\)"):
        copy_in(stack, str(source) + "/.", "/etc")
    assert os.listdir(stack.upper) == []
    copy_in(stack, str(source), "/")  # from the root, ".." cannot climb higher: dockerd takes it
    assert os.readlink(stack.upper / "etc" / "y") == "../../up"


# ps: the STATUS column


def _state(**state: object) -> dict[str, object]:
    base: dict[str, object] = {"Running": False, "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "ExitCode": 0}
    return {"State": {**base, **state}}


def test_status_words_as_docker() -> None:
    started, finished = "2024-01-01T00:00:00.5Z", "2024-01-01T00:10:00.25Z"
    t0, t1 = GoTime.parse(started).timestamp, GoTime.parse(finished).timestamp
    assert status(_state(), t0) == "Created" and not is_running(_state())
    assert status(_state(StartedAt=started, FinishedAt=finished, ExitCode=3), t1 + 5.9) == "Exited (3) 5 seconds ago"
    assert status(_state(StartedAt=started, FinishedAt=finished, ExitCode=137), t0 + 600 + 7200) == "Exited (137) 2 hours ago"
    up = _state(Running=True, StartedAt=started)
    assert status(up, t0 + 0.4) == "Up Less than a second" and is_running(up)
    assert status(up, t0 + 61) == "Up About a minute"
    assert status(_state(Running=True, Paused=True, StartedAt=started), t0 + 3 * 86400) == "Up 3 days (Paused)"
    assert status(_state(Running=True, Restarting=True, ExitCode=5, StartedAt=started, FinishedAt=finished), t1 + 0.9) == "Restarting (5) Less than a second ago"
    assert status(_state(Running=True, StartedAt=started, Health={"Status": "starting"}), t0 + 1) == "Up 1 second (health: starting)"
    assert status(_state(Running=True, StartedAt=started, Health={"Status": "unhealthy"}), t0 + 2) == "Up 2 seconds (unhealthy)"
    assert status(_state(Dead=True, StartedAt=started), t0) == "Dead"
    assert status(_state(RemovalInProgress=True, Dead=True), t0) == "Removal In Progress"
    assert status(_state(StartedAt=started), t0) == ""  # started, never finished, not running
    assert status({"State": "bogus"}, t0) == "Created"


def test_records_that_would_name_dirs_outside_overlay2_are_not_used(tmp_path: Path) -> None:
    """mount-id, init-id, parent and lower elements become paths: only dockerd's shapes pass."""
    store = ContainerStore(tmp_path)
    container_id = "c" * 64
    (store.containers_dir / container_id).mkdir(parents=True)
    (store.containers_dir / container_id / "config.v2.json").write_text('{"Name": "/x"}')
    mount = store.mounts_dir / container_id
    mount.mkdir(parents=True)
    for mount_id, parent in (("../../../victim", ""), ("d" * 64, "sha256:../x"), ("d" * 64, "sha256:" + "e" * 64)):
        (mount / "mount-id").write_text(mount_id)
        (mount / "init-id").write_text(mount_id + "-init")
        (mount / "parent").write_text(parent)
        assert [c.mount_id for c in store.list()] == ([mount_id] if parent.endswith("e" * 64) else [])
    links = tmp_path / "overlay2" / "l"
    links.mkdir(parents=True)
    (links / ("A" * 26)).symlink_to("../" + "f" * 64 + "/diff")
    (links / ("B" * 26)).symlink_to("../../../victim/diff")
    assert overlay2_dir_of_link(links, "l/" + "A" * 26) == "f" * 64
    for element in ("l/" + "B" * 26, "l/../../victim", "/etc"):
        with pytest.raises(StoreError, match="not a layer link"):
            overlay2_dir_of_link(links, element)


def test_resolution_work_grows_with_the_path_not_its_square(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 links, each walking 200 dirs down and back up: one lstat per diff and component, never
    the whole path again at each step (a hostile image could make that quadratic)."""
    stack = _stack(tmp_path, 3)
    base = stack.diffs[-1]
    deep = base.joinpath(*["a"] * 200)
    deep.mkdir(parents=True)
    (base / "end").mkdir()
    for k in range(40):
        (base / ("l%d" % k)).symlink_to("/" + "a/" * 200 + "../" * 200 + ("l%d" % (k + 1) if k < 39 else "end"))
    calls = []
    for name in ("lstat", "stat"):  # Path.lstat() calls os.stat
        monkeypatch.setattr(os, name, lambda *a, real=getattr(os, name), **k: calls.append(1) or real(*a, **k))
    assert stack.resolve("/l0/x", follow_last=True) == PurePosixPath("end/x")
    components = 40 * 401 + 2
    assert len(calls) <= 2 * len(stack.diffs) * components, len(calls)
