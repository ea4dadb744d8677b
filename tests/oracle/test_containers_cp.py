"""`emustore cp` against `docker cp` (20.10): the same inputs on twin containers of one root.

Each copy runs once through a dockerd started on the root and once through emustore with the
daemon stopped; the resulting trees (the containers' upper dirs, the host DEST dirs) must be
equal, times included, and what docker cp refuses emustore refuses, without writing anything.
Hostile inputs (links of the image aimed at a canary beside the root) show that neither writes
outside.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emustore.pull import pull
from emustore.stores.docker.containers import ContainerStore
from tests.oracle.test_containers import emustore
from tests.support.canary import changes, make_canary, snapshot
from tests.support.dockerd import Dockerd
from tests.support.figures import record
from tests.support.imagefactory import CAP_NET_BIND_SERVICE, ImageBuilder, LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.oracle, pytest.mark.registry]


def cp_image() -> ImageBuilder:
    """busybox plus what cp meets: a symlink to "/", one to a dir, hard links, a link climbing up."""
    extra = (
        LayerBuilder().dir("data/").dir("data/sub/").file("data/sub/f", b"f\n", mode=0o640)
        .symlink("data/link", "/data/sub").symlink("app", "/").symlink("sublink", "data/sub")
        .dir("hard/").file("hard/a", b"linked\n").hardlink("hard/b", "hard/a").dir("links/").symlink("links/up", "../../..")
        .file("data/cap", b"cap\n", mode=0o755, xattrs={"security.capability": CAP_NET_BIND_SERVICE, "user.note": b"x"})
    )
    return busybox_image("docker", cmd=("sh",)).layer(extra, created_by="cp paths")


@pytest.fixture(scope="module")
def cp_images(registry: RegistryServer) -> tuple[PushedImage, PushedImage]:
    """(with the paths above, plain busybox: no link in it climbs out of a copy of its root)."""
    return cp_image().push(registry.host, "ct/cp", "v1"), busybox_image("docker", cmd=("sh",)).push(registry.host, "ct/plain", "v1")


COPY_IN = [  # host source (below host/), container DEST
    ("dir", "/data"), ("dir/inner/..", "/"), ("dir/inner/..", "/named"), ("dir/.", "/bin"), ("dir/", "/trail"),
    ("flink", "/"), ("file", "/app/data/sub/"), ("file", "/etc/..//renamed"), ("file", "bin/relative"),
    ("dir", "/app"), ("file", "/sublink"), ("hard", "/data/"), ("file", "/data/sub/f"), ("dir", "/newdir/"),
    ("dir/.", "/contents"),
]
COPY_IN_REFUSED = [("esc", "/data"), ("file", "/nope/x"), ("dir", "/data/sub/f"), ("file", "/newdir/"), ("conf/.", "/")]
COPY_OUT = [  # (plain image?, container SRC, DEST below out/<n>/)
    (True, "/etc/..", "x"), (True, "/etc/..", ""), (False, "/data/sub/..", ""), (False, "/bin/.", "bin"),
    (False, "/app/data", ""), (False, "/data/link", ""), (False, "/data/link/", ""), (False, "/hard", ""),
    (False, "/etc/hosts", "renamed"), (False, "/data//sub/f", "existing"), (False, "/data", ""), (True, "/", "y"),
    (False, "data/sub", ""), (False, "/etc/hosts", "dlink"),
]
COPY_OUT_REFUSED = [(False, "/etc/..", "x"), (False, "/nope", ""), (False, "/data", "existing"), (False, "/etc/hosts", "missing/"), (False, "/data/sub/f/", "")]
WHEN = 1_577_934_245.678901  # sub-second source times: docker cp keeps whole seconds


def _cp_host_tree(host: Path) -> None:
    (host / "dir" / "inner").mkdir(parents=True)
    (host / "dir" / "inner" / "f").write_text("payload\n")
    (host / "dir" / "rel").symlink_to("inner/f")
    (host / "file").write_text("file\n")
    os.chmod(host / "file", 0o4750)
    os.chown(host / "file", 1234, 567)
    (host / "flink").symlink_to("file")
    os.setxattr(host / "dir" / "inner" / "f", "security.capability", CAP_NET_BIND_SERVICE)
    os.setxattr(host / "dir" / "inner" / "f", "user.note", b"not carried")
    (host / "hard").mkdir()
    (host / "hard" / "x").write_text("x\n")
    os.link(host / "hard" / "x", host / "hard" / "y")
    (host / "esc").mkdir()
    (host / "esc" / "up").symlink_to("../../..")
    (host / "conf" / "bin" / "busybox").mkdir(parents=True)
    for path in sorted(host.rglob("*"), reverse=True) + [host]:
        os.utime(path, (WHEN + 1000, WHEN), follow_symlinks=False)


def _out_dirs(base: Path) -> None:
    for n, (_, _, target) in enumerate(COPY_OUT + COPY_OUT_REFUSED):
        (base / str(n)).mkdir(parents=True)
        (base / str(n) / "existing").write_text("there before\n")
        (base / str(n) / "dlink").symlink_to("target")  # a DEST that is a link: followed
        if target == "" and n < len(COPY_OUT):
            (base / str(n) / "data").mkdir()
            (base / str(n) / "data" / "kept").write_text("merged with\n")


def _xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    """The opaque mark and what a copy may carry; not what the kernel's overlayfs adds (§5.2)."""
    names = os.listxattr(path, follow_symlinks=False)
    kept = [n for n in names if n == "trusted.overlay.opaque" or not n.startswith("trusted.overlay.")]
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in kept))


def _copied(top: Path, since: float, rel: str = "") -> dict[str, tuple[Any, ...]]:
    """Every entry below `top`: type, mode, owner, content or target, xattrs, link count and
    the times docker cp sets (mtime; atime = mtime, or the epoch for dirs). Times the kernel set
    (mtime after `since`; a copied-up dir's atime) are only checked to be of that kind. Each
    entry is lstat-ed before it is read or listed, which may move its atime."""
    found: dict[str, tuple[Any, ...]] = {}
    for name in sorted(os.listdir(top / rel if rel else top)):
        path = top / rel / name
        st = path.lstat()
        kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
        atime_by_copy = st.st_atime_ns == (0 if kind == "d" else st.st_mtime_ns)
        times = "recent" if st.st_mtime >= since else (st.st_mtime_ns, st.st_atime_ns if atime_by_copy else "kernel")
        content = os.readlink(path) if kind == "l" else path.read_bytes() if kind == "f" else None
        found[posixpath.join(rel, name)] = (
            kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content, _xattrs(path) if kind != "l" else (),
            times, st.st_nlink if kind == "f" else 0,
        )
        if kind == "d":
            found.update(_copied(top, since, posixpath.join(rel, name)))
    return found


def _same_times(model: Path, copy: Path) -> None:
    """Give `copy` and each entry below it the times of the entry at the same place below `model`."""
    for path in [*sorted(model.rglob("*"), reverse=True), model]:
        st = path.lstat()
        os.utime(copy / path.relative_to(model), ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def test_cp_matches_docker_cp(
    cp_images: tuple[PushedImage, PushedImage], dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    """Issues 13.3 and 14.2: every form (dots, "..", trailing "/", symlinks in the container at any
    component and last, hard links) lands where docker cp puts it, with docker cp's times, modes
    and owners; what docker cp refuses, emustore refuses (before writing, where docker stops half-way)."""
    rich, plain = cp_images
    root = tmp_path / "root"
    for pulled in cp_images:
        pull(pulled.reference, root)
    for name, pulled in (("dk", rich), ("em", rich), ("dkf", rich), ("emf", rich), ("dko", rich), ("emo", rich), ("dkp", plain), ("emp", plain)):
        emustore("create", "--name", name, pulled.reference, root=root)
    store = ContainerStore(root)
    for kind in ("", "f", "o", "p"):  # the two sides' init and upper layers differ only in when create made them
        for layer in (0, 1):
            _same_times(*(store.stack(store.find(side + kind)).diffs[layer] for side in ("dk", "em")))
    _cp_host_tree(tmp_path / "host")
    for side in ("dk", "em"):
        _out_dirs(tmp_path / ("out-" + side))
    since = time.time() - 1

    def copy_in(side: str) -> list[int]:
        run = (lambda *a: daemon.docker("cp", *a, check=False)) if side == "dk" else (lambda *a: emustore("cp", *a, root=root, check=False))
        host = str(tmp_path / "host") + "/"  # SRC as typed: pathlib would drop a trailing "/" or "/."
        codes = [run(host + s, side + ":" + d).returncode for s, d in COPY_IN]
        codes += [run(host + s, side + "f:" + d).returncode for s, d in COPY_IN_REFUSED]
        for n, (is_plain, source, target) in enumerate(COPY_OUT + COPY_OUT_REFUSED):
            container = side + ("p" if is_plain else "o")
            codes.append(run(container + ":" + source, str(tmp_path / ("out-" + side) / str(n)) + "/" + target).returncode)
        return codes

    daemon = dockerd_factory(root)
    theirs = copy_in("dk")
    daemon.stop()
    ours = copy_in("em")
    expected = [0] * len(COPY_IN) + [1] * len(COPY_IN_REFUSED) + [0] * len(COPY_OUT) + [1] * len(COPY_OUT_REFUSED)
    assert [int(c != 0) for c in theirs] == expected
    assert [int(c != 0) for c in ours] == expected

    upper = {name: store.stack(store.find(name)).upper for name in ("dk", "em", "emf")}
    theirs_in, ours_in = _copied(upper["dk"], since), _copied(upper["em"], since)
    assert ours_in == theirs_in, "\n".join(f"{k}: docker {theirs_in.get(k)} emustore {ours_in.get(k)}" for k in sorted(theirs_in.keys() | ours_in.keys()) if theirs_in.get(k) != ours_in.get(k))
    assert theirs_in["dir/inner/f"][6] == (int(WHEN) * 10**9, int(WHEN) * 10**9)  # whole seconds, atime = mtime
    assert theirs_in["dir"][6] == (int(WHEN) * 10**9, 0)  # dirs: atime the epoch
    assert [x[0] for x in theirs_in["dir/inner/f"][5]] == ["security.capability"]  # the one xattr carried
    assert os.listdir(upper["emf"]) == []  # refused before anything was written
    for n in range(len(COPY_OUT)):
        theirs_out, ours_out = (_copied(tmp_path / ("out-" + side) / str(n), since) for side in ("dk", "em"))
        assert ours_out == theirs_out, (COPY_OUT[n], sorted(set(theirs_out.items()) ^ set(ours_out.items()), key=str)[:20])
    for n in range(len(COPY_OUT), len(COPY_OUT) + len(COPY_OUT_REFUSED)):
        assert sorted(os.listdir(tmp_path / "out-em" / str(n))) == ["dlink", "existing"], COPY_OUT_REFUSED[n - len(COPY_OUT)]


# hostile inputs: links of the image aimed at a canary beside the root


HOSTILE = [  # ("in", host SRC, container DEST) or ("out", container SRC, DEST below out/<n>/)
    ("in", "file", "/abs/"), ("in", "file", "/rel/decoy"), ("in", "dir", "/deep/rel/sub"), ("in", "file", "/deep/decoy"),
    ("in", "dir/inner/..", "/rel"), ("in", "dir/inner/..", "/rel/.."), ("in", "link", "/deep/"), ("in", "file", "/abs"),
    ("in", "dir/.", "/rel/sub/"), ("out", "/abs/decoy", ""), ("out", "/rel/", ""), ("out", "/deep/rel/..", ""),
    ("out", "/etc/..", "x"), ("out", "/deep/decoy", "d"), ("out", "/abs", "a"), ("out", "/rel/sub/inner/f", ""),
    ("out", "/data/sub/..", "y"),
]


def test_hostile_cp_inputs_docker_and_emustore_agree(
    hostile_image: PushedImage, module_canary: Path, dockerd_factory: Callable[[Path], Dockerd], tmp_path: Path
) -> None:
    """Issue 13 through the real docker cp: each hostile input, run on its own twin containers,
    gives the same outcome and tree with docker and with emustore, and neither touches a canary."""
    root = tmp_path / "root"
    pull(hostile_image.reference, root)
    make_canary(tmp_path / "canary")
    host = tmp_path / "host"
    (host / "dir" / "inner").mkdir(parents=True)
    (host / "dir" / "inner" / "f").write_text("payload\n")
    (host / "file").write_text("payload\n")
    (host / "link").symlink_to(module_canary)
    for n in range(len(HOSTILE)):
        for side in ("dk", "em"):
            emustore("create", "--name", f"{side}{n}", hostile_image.reference, root=root)
            (tmp_path / ("out-" + side) / str(n)).mkdir(parents=True)
    store = ContainerStore(root)
    for n in range(len(HOSTILE)):
        _same_times(*(store.stack(store.find(f"{side}{n}")).diffs[1] for side in ("dk", "em")))
    canaries = (module_canary, tmp_path / "canary")
    pristine = [snapshot(c) for c in canaries]
    since = time.time() - 1

    def copy_all(side: str, run: Callable[..., int]) -> list[int]:
        codes = []
        for n, (way, source, target) in enumerate(HOSTILE):
            if way == "in":
                codes.append(run(f"{host}/{source}", f"{side}{n}:{target}"))
            else:
                codes.append(run(f"{side}{n}:{source}", f"{tmp_path}/out-{side}/{n}/{target}"))
        return codes

    daemon = dockerd_factory(root)
    theirs = copy_all("dk", lambda *a: daemon.docker("cp", *a, check=False).returncode)
    daemon.stop()
    docker_changes = sum(len(changes(before, snapshot(c))) for before, c in zip(pristine, canaries))
    ours = copy_all("em", lambda *a: emustore("cp", *a, root=root, check=False).returncode)
    our_changes = sum(len(changes(before, snapshot(c))) for before, c in zip(pristine, canaries))
    same = [(a == 0) == (b == 0) for a, b in zip(theirs, ours)]
    record(
        "docker cp vs emustore cp, hostile inputs", cases=len(HOSTILE), same_outcome=sum(same),
        docker_refused=sum(c != 0 for c in theirs), docker_outside_changes=docker_changes, outside_changes=our_changes,
    )
    assert all(same), [(case, a, b) for case, a, b in zip(HOSTILE, theirs, ours) if (a == 0) != (b == 0)]
    assert docker_changes == our_changes == 0
    for n, (way, source, target) in enumerate(HOSTILE):
        twins = [store.stack(store.find(f"{side}{n}")).upper if way == "in" else tmp_path / f"out-{side}" / str(n) for side in ("dk", "em")]
        if theirs[n] == 0:
            assert _copied(twins[0], since) == _copied(twins[1], since), HOSTILE[n]
        else:
            assert os.listdir(twins[1]) == [], HOSTILE[n]  # refused before writing
