"""Containers without a daemon: config merge and JSON, names, the overlay view and init layer, ps text."""

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
from emustore.stores.docker.goconfig import rfc3339nano
from emustore.stores.docker.containers import Container

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
    stack.remove(PurePosixPath("srv/old"))
    st = (upper / "srv" / "old").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_IMODE((upper / "srv").stat().st_mode) == 0o750 and (upper / "srv").stat().st_uid == 7
    host = tmp_path / "new.txt"
    host.write_text("new")
    os.chmod(host, 0o640)
    stack.add(host, PurePosixPath("srv/new.txt"))
    assert (upper / "srv" / "new.txt").read_text() == "new"
    assert stat.S_IMODE((upper / "srv" / "new.txt").stat().st_mode) == 0o640
    with pytest.raises(ContainerPathError):
        stack.remove(PurePosixPath("srv/missing"))


def test_add_over_removed_dir_makes_it_opaque(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2)
    upper, base = stack.diffs
    (base / "data").mkdir()
    (base / "data" / "x").write_text("x")
    stack.remove(PurePosixPath("data"))
    source = tmp_path / "data"
    source.mkdir()
    (source / "y").write_text("y")
    stack.add(source, PurePosixPath("data"))
    assert os.getxattr(upper / "data", OPAQUE_XATTR) == b"y"
    assert stack.lookup(PurePosixPath("data/x")) is None


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
    from emustore.stores.docker.containerfs import check_copyable

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "ok").write_text("x")
    check_copyable(source)
    os.mkfifo(source / "sub" / "fifo")
    with pytest.raises(ContainerPathError, match="fifo"):
        check_copyable(source)
