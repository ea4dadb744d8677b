"""Hostile layers are refused or contained: nothing is ever written outside the layer's diff dir.

Each layer aims at a decoy directory beside the staging dir (by `../`, absolute names, symlinks,
hard links, whiteouts). Two witnesses per case: a snapshot of everything around the diff dir, and
an audit hook counting every file-system write whose target resolves outside it (must be 0).
dockerd's semantics (format doc §9.1) resolve names inside the layer, so "contained" is the
faithful answer for `../up` or `/abs`; refusals are one-line LayerErrors.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emustore.engines import DOCKER_28
from emustore.errors import LayerError
from emustore.layers import pipeline
from emustore.layers.assemble import assemble
from emustore.layers.compression import BATCH
from emustore.layers.layer_process import unpack_layer_forked
from emustore.layers import expansion
from emustore.layers.expansion import ExpansionLimit, expansion_limit
from emustore.layers.pipeline import VERIFY_TAIL, UnpackOptions, unpack_layer
from tests.support.faults import counted, gzip_bomb
from tests.support.figures import module_figures, record
from tests.support.tarlayer import BLOCK, Header, LayerBuilder, pax_records

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
# audit event → indexes of the path arguments it writes (or, for link, also reads)
_WRITE_EVENTS = {
    "os.mkdir": (0,), "os.symlink": (1,), "os.link": (0, 1), "os.rename": (0, 1), "os.replace": (0, 1),
    "os.remove": (0,), "os.rmdir": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.truncate": (0,), "shutil.rmtree": (0,),
}


class _Watch:
    """While `allowed` is set, counts writes whose target resolves outside the allowed paths."""

    allowed: tuple[str, ...] = ()
    outside: list[str] = []
    separate_process = "here"


def _resolved(path: object) -> str | None:
    if isinstance(path, int) or path is None:
        return None
    name = os.fsdecode(path)  # type: ignore[arg-type]
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(name))), os.path.basename(name))


def _audit(event: str, args: tuple) -> None:
    if not _Watch.allowed:
        return
    if event == "open":
        paths = [args[0]] if isinstance(args[2], int) and args[2] & _WRITE_FLAGS else []
    elif event in _WRITE_EVENTS:
        paths = [args[i] for i in _WRITE_EVENTS[event] if i < len(args)]
    else:
        return
    for path in paths:
        real = _resolved(path)
        if real is not None and not any(real == a or real.startswith(a + "/") for a in _Watch.allowed):
            _Watch.outside.append("%s %s" % (event, real))


sys.addaudithook(_audit)
FIGURES = {"cases": 0, "refused": 0, "contained": 0, "outside_attempts": 0, "outside_changes": 0}


def _snapshot(top: Path, skip: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every entry under `top` except `skip` and below: mode, size, mtime, link target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            st = os.lstat(here / name)
            target = os.fsencode(os.readlink(here / name)) if os.path.islink(here / name) else b""
            found[str(here / name)] = (st.st_mode, st.st_size, st.st_mtime_ns, target)
    return found


@pytest.fixture(params=["here", "child", "layer-process"])
def separate_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every case three times: extracted in the calling thread, where the audit hook sees each
    write; in the forked child a pull uses for many small files (taking over after the first
    member here); and in the forked layer process a pull runs each layer in, which forks that
    child in turn. For the forked ones the snapshot of the surroundings is the witness."""
    _Watch.separate_process = request.param
    monkeypatch.setattr(pipeline, "FORK_CHECK_EVERY", 1)
    return request.param


@pytest.fixture
def sandbox(scratch: Path, separate_process: str) -> Path:
    """sandbox/{outside/decoy, stage/diff/}: hostile names aim at outside/."""
    tmp_path = scratch
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "decoy").write_bytes(b"do not touch\n")
    (tmp_path / "stage" / "diff").mkdir(parents=True)
    return tmp_path


def _apply(sandbox: Path, blob: bytes | Iterator[bytes], digest: str | None = None, **kw: object) -> LayerError | None:
    """Unpack into sandbox/stage/diff under watch; return the refusal, if any."""
    diff = sandbox / "stage" / "diff"
    tar_split = sandbox / "stage" / "ts.json.gz"
    tar_split.touch()  # created beforehand so that its directory does not change
    before = _snapshot(sandbox, diff)
    chunks = iter([blob]) if isinstance(blob, bytes) else blob
    digest = digest or "sha256:" + hashlib.sha256(blob if isinstance(blob, bytes) else b"").hexdigest()
    _Watch.outside = []
    _Watch.allowed = (str(diff.resolve()), str(tar_split.resolve()))
    error = None
    unpack = unpack_layer_forked if _Watch.separate_process == "layer-process" else unpack_layer
    try:
        unpack(chunks, digest, str(diff), str(tar_split), UnpackOptions(may_fork=_Watch.separate_process != "here", **kw))
    except LayerError as exc:
        error = exc
    finally:
        _Watch.allowed = ()
    after = _snapshot(sandbox, diff)
    changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p) and p != str(tar_split)]
    FIGURES["cases"] += 1
    FIGURES["refused" if error else "contained"] += 1
    FIGURES["outside_attempts"] += len(_Watch.outside)
    FIGURES["outside_changes"] += len(changed)
    assert _Watch.outside == [], _Watch.outside
    assert changed == [], changed
    assert not diff.is_symlink() and diff.is_dir(), "the layer root was replaced"
    if error is not None:
        assert "\n" not in str(error)
    return error


def _out(sandbox: Path, *parts: str) -> str:
    return str(sandbox.resolve() / "outside" / Path(*parts))


# names that clean to the layer root itself (dockerd 20.10: "unlinkat .//: device or resource busy"),
# and names that clean to "." (skipped whole, as dockerd skips "." over a directory)
ROOT_NAMES = ["/", "//", "/.", "..", "../", "./..", "../..", "/..", "a/../.."]
DOT_NAMES = [".", "./", "a/..", "./."]


CONTAINED = {
    # name of the test → (layer builder given the sandbox, path expected inside diff/, or its maker)
    "dotdot": (lambda s: LayerBuilder().file("../../outside/evil", b"x"), "outside/evil"),
    "dotdot_inside_path": (lambda s: LayerBuilder().file("a/../../../../outside/evil", b"x"), "outside/evil"),
    "absolute": (lambda s: LayerBuilder().file(_out(s, "abs"), b"x"), lambda s: _out(s, "abs")[1:]),
    "symlink_up_then_file": (
        lambda s: LayerBuilder().symlink("up", "../../../../..").file("up/escaped", b"x"),
        "escaped",
    ),
    "symlink_absolute_dir_then_dir": (
        lambda s: LayerBuilder().dir("real/").symlink("lnk", "/real").file("lnk/f", b"x"),
        "real/f",
    ),
    "whiteout_dotdot_prefix": (lambda s: LayerBuilder().whiteout("../outside"), "outside"),
    "double_slashes": (lambda s: LayerBuilder().file("//a//b///c", b"x"), "a/b/c"),
    "dot_segments": (lambda s: LayerBuilder().file("./././d/./e", b"x"), "d/e"),
    "nul_in_header_name": (lambda s: LayerBuilder().file(b"cut\0../../outside/evil", b"x"), "cut"),
    **{
        "root_as_dir_%s" % name.replace("/", "S").replace(".", "D"): (
            lambda s, name=name: LayerBuilder().dir(name, mode=0o700).file("decoy", b"inside"),
            "decoy",
        )
        for name in ROOT_NAMES
    },
    **{
        "dot_as_%s_%s" % (kind, name.replace("/", "S").replace(".", "D")): (
            lambda s, kind=kind, name=name: _replacing_root(kind, name)(s),
            "decoy",
        )
        for kind in ("symlink", "file", "hardlink", "fifo")
        for name in DOT_NAMES
    },
    "deep_name_1200_dirs": (lambda s: LayerBuilder().file("a/" * 1200 + "f", b"x"), "a/" * 1200 + "f"),
    "deep_tree_replaced_by_file": (lambda s: LayerBuilder().file("a/" * 1200 + "f", b"x").file("a", b"x"), "a"),
    "deep_name_through_40_symlinks": (  # the kernel's limit in one path, which dockerd meets
        lambda s: LayerBuilder().dir("d/").symlink("d/up", "..").file("d/up/" * 40 + "f", b"x"),
        "f",
    ),
    "hardlink_inside_via_dotdot": (
        lambda s: LayerBuilder().file("t", b"x").hardlink("h", "../../../t"),
        "h",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTAINED))
def test_contained(case: str, sandbox: Path) -> None:
    build, expected = CONTAINED[case]
    expected = expected(sandbox) if callable(expected) else expected
    tar = build(sandbox).build()
    assert _apply(sandbox, gzip.compress(tar, mtime=0)) is None
    assert os.path.lexists(sandbox / "stage" / "diff" / expected)
    assert (sandbox / "outside" / "decoy").read_bytes() == b"do not touch\n"


def _pax_nul_path() -> bytes:
    body = pax_records({"path": b"a\0../../outside/evil"})
    header = Header(b"PaxHeaders/a", b"x", size=len(body)).encode()
    return header + body + b"\0" * (-len(body) % BLOCK) + Header(b"a", size=0).encode()


def _replacing_root(kind: str, name: str) -> Callable[[Path], LayerBuilder]:
    """A member of `kind` named like the root, then members that would land outside through it."""

    def build(s: Path) -> LayerBuilder:
        layer = LayerBuilder().file("before", b"x")
        if kind == "symlink":
            layer.symlink(name, _out(s))
        elif kind == "file":
            layer.file(name, b"x")
        elif kind == "hardlink":
            layer.hardlink(name, "before")
        else:
            layer.fifo(name)
        return layer.file("decoy", b"overwritten").file("planted", b"x", mode=0o4755)

    return build


REFUSED = {
    **{
        "root_as_%s_%s" % (kind, name.replace("/", "S").replace(".", "D")): _replacing_root(kind, name)
        for kind in ("symlink", "file", "hardlink", "fifo")
        for name in ROOT_NAMES
    },
    "symlink_absolute_outside_then_file": lambda s: LayerBuilder().symlink("esc", _out(s)).file("esc/through", b"x"),
    "hardlink_outside_relative": lambda s: LayerBuilder().hardlink("hl", "../../outside/decoy"),
    "hardlink_outside_absolute": lambda s: LayerBuilder().hardlink("hl", _out(s, "decoy")),
    "hardlink_through_symlink": lambda s: LayerBuilder().symlink("s", _out(s)).hardlink("hl", "s/decoy"),
    "hardlink_to_later_entry": lambda s: LayerBuilder().hardlink("early", "late").file("late", b"x"),
    "whiteout_of_dotdot": lambda s: LayerBuilder().dir("sub/").file("sub/.wh..", b""),
    "whiteout_of_dotdot_at_top": lambda s: LayerBuilder().file(".wh..", b""),
    "pax_path_with_nul": lambda s: LayerBuilder().raw(_pax_nul_path()),
    "huge_declared_size": lambda s: LayerBuilder().raw(Header(b"big", size=1 << 40).encode() + b"x" * 4096),
    "deep_name_through_41_symlinks": lambda s: LayerBuilder().dir("d/").symlink("d/up", "..").file("d/up/" * 41 + "f", b"x"),
    "deep_name_through_600_symlinks": lambda s: LayerBuilder().dir("d/").symlink("d/up", "..").file("d/up/" * 600 + "f", b"x"),
    "dir_replaced_by_dangling_symlink": lambda s: LayerBuilder().dir("a/").symlink("/a", "missing"),
    "dir_replaced_by_symlink_loop": lambda s: LayerBuilder().dir("a/").symlink("/a", "/a"),
    "socket_member": lambda s: LayerBuilder().raw(Header(b"sock", b"7").encode()),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(case: str, sandbox: Path) -> None:
    tar = REFUSED[case](sandbox).build()
    error = _apply(sandbox, gzip.compress(tar, mtime=0))
    assert error is not None, "expected a refusal"
    assert (sandbox / "outside" / "decoy").read_bytes() == b"do not touch\n"


LINK_XATTRS = {"user.x": b"v", "trusted.x": b"v"}
# Docker 28 sets a symlink's xattrs on what it resolves to (engines dialect): resolved inside the
# layer, where these targets do not exist, so the layer fails as dockerd 28's does; nothing outside changes.
SYMLINK_XATTRS_AIMING_OUT = {
    "relative_up": lambda s: LayerBuilder().symlink("l", "../../outside/decoy", xattrs=LINK_XATTRS),
    "absolute_host_path": lambda s: LayerBuilder().symlink("l", _out(s, "decoy"), xattrs=LINK_XATTRS),
    "through_a_dir_link": lambda s: LayerBuilder().symlink("d", _out(s)).symlink("l", "d/decoy", xattrs=LINK_XATTRS),
    "chain_up": lambda s: LayerBuilder().symlink("a", "../../outside").symlink("l", "a/decoy", xattrs=LINK_XATTRS),
    "at_the_outside_dir": lambda s: LayerBuilder().symlink("l", "../../outside", xattrs=LINK_XATTRS),
}


@pytest.mark.parametrize("case", sorted(SYMLINK_XATTRS_AIMING_OUT))
def test_symlink_xattrs_on_target_stay_inside(case: str, sandbox: Path) -> None:
    tar = SYMLINK_XATTRS_AIMING_OUT[case](sandbox).build()
    error = _apply(sandbox, gzip.compress(tar, mtime=0), dialect=DOCKER_28)
    assert error is not None and "no such file or directory" in str(error), error
    for path in (sandbox / "outside", sandbox / "outside" / "decoy"):
        assert os.listxattr(path, follow_symlinks=False) == [], path


def test_symlink_xattrs_on_target_inside(sandbox: Path) -> None:
    tar = LayerBuilder().dir("d/").file("d/t", b"x").symlink("up", "/d").symlink("l", "up/t", xattrs=LINK_XATTRS).build()
    assert _apply(sandbox, gzip.compress(tar, mtime=0), dialect=DOCKER_28) is None
    diff = sandbox / "stage" / "diff"
    assert {name: os.getxattr(diff / "d" / "t", name) for name in LINK_XATTRS} == LINK_XATTRS
    assert os.listxattr(diff / "l", follow_symlinks=False) == []


def _endless_pax_headers(total: int) -> Iterator[bytes]:
    """A gzip stream of PAX extended headers that never reaches a member (generated, never stored)."""
    body = pax_records({"comment": "x" * 400})
    unit = Header(b"PaxHeaders/x", b"x", size=len(body)).encode() + body + b"\0" * (-len(body) % BLOCK)
    block = unit * 256
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    for _ in range(total // len(block)):
        if out := z.compress(block):
            yield out
    yield z.flush()


def test_endless_headers_stop_at_the_expansion_limit(sandbox: Path) -> None:
    digest = hashlib.sha256()
    for block in _endless_pax_headers(256 << 20):
        digest.update(block)
    error = _apply(
        sandbox, _endless_pax_headers(256 << 20), digest="sha256:" + digest.hexdigest(),
        expansion=ExpansionLimit(ratio=20, floor=8 << 20),
    )
    assert error is not None and "expands beyond" in str(error)


SMALL_LIMIT = ExpansionLimit(ratio=100, floor=1 << 20)


def test_gzip_bomb_is_refused(sandbox: Path) -> None:
    blob = gzip_bomb(256 << 20)
    assert len(blob) < 300 << 10
    error = _apply(sandbox, blob, expansion=SMALL_LIMIT)
    assert error is not None and "expands beyond %d bytes" % (100 * len(blob)) in str(error)
    assert os.path.getsize(sandbox / "stage" / "diff" / "bomb") <= 100 * len(blob)


def test_the_limit_follows_the_bytes_received(sandbox: Path) -> None:
    """A bomb fed in 4 KiB pieces is refused once its output passes 100 × the pieces read so far:
    long before its end, whatever size a manifest may have claimed for it."""
    blob = gzip_bomb(256 << 20)
    pieces = (blob[i : i + 4096] for i in range(0, len(blob), 4096))
    error = _apply(sandbox, pieces, digest="sha256:" + hashlib.sha256(blob).hexdigest(), expansion=SMALL_LIMIT)
    found = re.search(r"expands beyond (\d+) bytes from the (\d+) compressed bytes received", str(error))
    assert found is not None, error
    allowed, received = int(found.group(1)), int(found.group(2))
    written = os.path.getsize(sandbox / "stage" / "diff" / "bomb")
    assert allowed == max(1 << 20, 100 * received), (received, len(blob))
    if _Watch.separate_process != "layer-process":  # the pipe to a layer process takes all 255 KiB at once
        assert received < len(blob) // 4, (received, len(blob))
    assert written <= allowed + BATCH
    record("expansion bound by bytes received", blob=len(blob), received=received, written=written)


def _bomb_then_noise(noise: int) -> Iterator[bytes]:
    """A gzip bomb member, then `noise` bytes of a second member (random, generated as read)."""
    yield gzip_bomb(64 << 20)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    for i in range(noise >> 20):
        yield z.compress(hashlib.sha256(b"%d" % i).digest() * (1 << 15))


def test_a_failed_layer_stops_reading_its_blob(sandbox: Path) -> None:
    """Refused after its bomb, a layer reads at most VERIFY_TAIL more of the 256 MiB that follow,
    and reports the bomb (the digest given is wrong: reading it all would have said so)."""
    read = counted(_bomb_then_noise(256 << 20))
    error = _apply(sandbox, read, digest="sha256:" + "0" * 64, expansion=SMALL_LIMIT)
    assert error is not None and "expands beyond" in str(error)
    assert read.total <= (64 << 10) + 2 * VERIFY_TAIL + (2 << 20), read.total
    record("failed layer stops reading", received=read.total, blob_at_least=256 << 20)


def test_expansion_limit_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert expansion_limit() == ExpansionLimit(1100, 1 << 30)
    assert expansion_limit(0) is None
    limit = expansion_limit(10)
    assert limit is not None and limit.refusal(1 << 30, 10) is None and limit.refusal((1 << 30) + 1, 10)
    assert limit.refusal(10 << 30, 1 << 30) is None and limit.refusal((10 << 30) + 1, 1 << 30)
    monkeypatch.setattr(expansion, "MIN_EXPANSION_LIMIT", 1 << 20)
    assert expansion_limit(10) == ExpansionLimit(10, 1 << 20)


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["outside_attempts"] == 0 and figures["outside_changes"] == 0


_figures = module_figures("hostile layers", FIGURES, _check_figures)


@pytest.mark.timeout(60)
def test_reassembly_refuses_a_fifo_in_place_of_a_file(scratch: Path) -> None:
    """A later member (another spelling of the name) puts a fifo where the tar-split has a file:
    save, push and fsck reassemble the layer; opening the fifo must not wait for a writer."""
    blob = gzip.compress(LayerBuilder().file("x", b"content").fifo("/x").build(), mtime=0)
    diff, tar_split = scratch / "diff", scratch / "ts.json.gz"
    diff.mkdir()
    unpack_layer(iter([blob]), "sha256:" + hashlib.sha256(blob).hexdigest(), str(diff), str(tar_split), UnpackOptions(may_fork=False))
    assert stat.S_ISFIFO(os.lstat(diff / "x").st_mode)
    with pytest.raises(LayerError, match="x for reassembly: not a regular file"):
        b"".join(assemble(tar_split, diff))
