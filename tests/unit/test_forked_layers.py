"""Forked work gives what the calling thread gives: a layer unpacked in its own process
(layer_process.py), or extracted by a child fed parsed members (extract_process.py), has the same
tree, result and tar-split as one unpacked in this thread, and bad layers the same first error."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import stat
from pathlib import Path

import pytest
import xattr

from emustore.errors import DigestMismatch, EmustoreError, LayerError
from emustore.layers.extract import Extractor
from emustore.layers.extract_process import ExtractProcess
from emustore.layers.layer_process import unpack_layer_forked
from emustore.layers import pipeline
from emustore.layers.pipeline import LayerResult, UnpackOptions, unpack_layer
from emustore.layers.size import layer_size
from emustore.layers.tarstream import ByteStream, TarReader
from tests.support.tarlayer import BLOCK, LayerBuilder

IMPLICIT_DIRS_EXCEPT = {"etc", "usr/lib"}  # the directories _good_layer has members for
BIG = bytes(range(256)) * 5000  # 1.28 MB: more than one buffer of records


def _good_layer() -> bytes:
    return (
        LayerBuilder()
        .dir("etc/", mode=0o755, uid=0, gid=0)
        .file("etc/passwd", b"root:x:0:0\n", mode=0o644)
        .file("etc/shadow", b"secret\n", mode=0o640, uid=0, gid=42)
        .file("usr/bin/tool", BIG, mode=0o4755)
        .file("home/user/.profile", b"export X=1\n", uid=1000, gid=1000)
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .symlink("usr/bin/link", "tool")
        .dir("usr/lib/")
        .symlink("lib", "usr/lib")
        .file("lib/libc.so", b"\x7fELF", mode=0o755)
        .file("xattr-file", b"x", xattrs={"user.test": b"value"})
        .fifo("run/fifo")
        .chardev("dev/null", 1, 3)
        .whiteout("var/cache")
        .opaque("opt")
        .file("opt/replaced", b"new\n")
        .symlink("lib2", "/usr/lib")
        .file("lib2/libc.so", b"replaced", mode=0o600)  # the same file by another name: replaced
        .build(trailing=b"\0" * 3 * BLOCK)
    )


MODES = ("here", "child", "layer")  # all in this thread; extraction child; layer process + extraction child


@pytest.fixture(autouse=True)
def fork_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extraction child takes over after the first member (the small layers here would
    never make a real layer's case for it): the state handed over is tested too."""
    monkeypatch.setattr(pipeline, "FORK_CHECK_EVERY", 1)


def _unpack(tmp_path: Path, mode: str, layer: bytes, digest: str | None = None) -> tuple[LayerResult | EmustoreError, Path]:
    blob = gzip.compress(layer, mtime=0)
    digest = digest or "sha256:" + hashlib.sha256(blob).hexdigest()
    diff = tmp_path / mode / "diff"
    diff.mkdir(parents=True)
    chunks = iter([blob[i : i + 7000] for i in range(0, len(blob), 7000)])
    args = (digest, str(diff), str(tmp_path / mode / "ts"))
    try:
        if mode == "layer":
            return unpack_layer_forked(chunks, *args), diff
        return unpack_layer(chunks, *args, UnpackOptions(may_fork=mode == "child")), diff
    except EmustoreError as exc:
        return exc, diff


def _tree(diff: Path) -> dict[str, tuple]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(diff):
        for name in dirnames + filenames + ([] if dirpath != str(diff) else ["."]):
            path = os.path.join(dirpath, name) if name != "." else dirpath
            st = os.lstat(path)
            content = Path(path).read_bytes() if stat.S_ISREG(st.st_mode) else os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            attrs = sorted(xattr.listxattr(path, symlink=True))
            rel = os.path.relpath(path, diff)
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            implicit = whiteout or (stat.S_ISDIR(st.st_mode) and rel not in IMPLICIT_DIRS_EXCEPT)  # the clock's time
            found[rel] = (
                st.st_mode, st.st_uid, st.st_gid, None if implicit else st.st_mtime_ns, st.st_rdev, st.st_nlink,
                content, attrs,
            )
    return found


@pytest.mark.parametrize("mode", MODES[1:])
def test_forked_work_writes_what_the_calling_thread_writes(tmp_path: Path, mode: str) -> None:
    layer = _good_layer()
    here, here_diff = _unpack(tmp_path, "here", layer)
    forked, forked_diff = _unpack(tmp_path, mode, layer)
    assert isinstance(here, LayerResult) and isinstance(forked, LayerResult)
    assert forked == here
    assert _tree(forked_diff) == _tree(here_diff)
    assert len(_tree(forked_diff)) > 15
    assert gzip.decompress((tmp_path / mode / "ts").read_bytes()) == gzip.decompress((tmp_path / "here" / "ts").read_bytes())
    assert forked.size == layer_size(str(forked_diff))


FAULTY = {
    # an extraction error (a file below a file) before a corrupt header: the extraction error
    "extraction_then_corrupt_header": LayerBuilder().file("a", b"x").file("a/b", b"y").file("c", b"z").raw(b"\x01" * BLOCK),
    # a corrupt header before an extraction error: the header's error
    "corrupt_header_then_extraction": LayerBuilder().file("a", b"x").raw(b"\x01" * BLOCK).file("a/b", b"y"),
    # a duplicate path (tar-split refuses it after applying it) before an extraction error
    "duplicate_then_extraction": LayerBuilder().file("d", b"1").file("./d", b"2").file("d/e", b"3"),
    # a member replacing another whose path is a duplicate of it: the duplicate error
    "replacement_at_duplicate": LayerBuilder().file("f", b"1").dir("f/"),
    # the stream ends inside a member's content
    "truncated_content": LayerBuilder().file("a", b"x").raw(LayerBuilder().file("big", BIG).build()[: 3 * BLOCK]),
    # a hard link to nothing
    "dangling_hardlink": LayerBuilder().file("a", b"x").hardlink("b", "missing"),
}


@pytest.mark.parametrize("fork_at", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("case", sorted(FAULTY))
def test_the_first_error_is_the_same_when_forked(
    tmp_path: Path, case: str, mode: str, fork_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "FORK_CHECK_EVERY", fork_at)  # the error before, at or after the fork
    layer = FAULTY[case].build() if not case.startswith("truncated") else FAULTY[case].build(end_blocks=0)
    here, _ = _unpack(tmp_path, "here", layer)
    forked, _ = _unpack(tmp_path, mode, layer)
    assert isinstance(here, LayerError), here
    assert type(forked) is type(here) and str(forked) == str(here)


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_blob_digest_is_reported_as_such(tmp_path: Path, mode: str) -> None:
    result, _ = _unpack(tmp_path, mode, _good_layer(), digest="sha256:" + "0" * 64)
    assert isinstance(result, DigestMismatch), result


class _Interrupted(Exception):
    pass


def _children() -> list[int]:
    return [int(c) for t in os.listdir("/proc/self/task") for c in Path(f"/proc/self/task/{t}/children").read_text().split()]


def test_an_interrupted_layer_process_is_stopped_and_reaped(tmp_path: Path) -> None:
    blob = gzip.compress(LayerBuilder().file("big", BIG * 4).build(), mtime=0)

    def chunks():
        yield blob[: len(blob) // 2]
        raise _Interrupted()

    before = _children()
    with pytest.raises(_Interrupted):
        unpack_layer_forked(chunks(), "sha256:" + hashlib.sha256(blob).hexdigest(), str(tmp_path), str(tmp_path / "ts"))
    assert _children() == before


def test_a_child_that_dies_is_a_layer_error(tmp_path: Path) -> None:
    process = ExtractProcess(Extractor(str(tmp_path)))
    os.kill(process.pid, signal.SIGKILL)
    outcome = process.finish()
    assert outcome.error is not None and "ended with signal 9" in outcome.error
    assert outcome.error_first(0) is not None


def test_abort_reaps_the_child(tmp_path: Path) -> None:
    process = ExtractProcess(Extractor(str(tmp_path)))
    process.abort()
    with pytest.raises(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)


@pytest.mark.parametrize(
    "layer",
    [
        LayerBuilder().file("a", b"12345").hardlink("b", "a").symlink("c", "a").dir("d/").file("d/e", BIG),
        LayerBuilder().file("a", b"12345").file("a/b", b"x"),  # fails: what was written still counts
        LayerBuilder().symlink("l", "dir").dir("dir/").file("l/f", b"abc").file("dir/f2", b"de"),
        LayerBuilder().dir("x/").file("x/f", b"123").symlink("y", "x").file("y", b"replaces"),
    ],
    ids=["links", "failed", "through-symlink", "replaced"],
)
def test_counted_layer_size_is_the_walked_one(tmp_path: Path, layer: LayerBuilder) -> None:
    extractor = Extractor(str(tmp_path))
    reader = TarReader(ByteStream(iter([layer.build()]), lambda chunk: None))
    try:
        while (hdr := reader.next()) is not None:
            pieces = reader.data()
            extractor.apply(hdr, pieces)
            for _ in pieces:
                pass
    except LayerError:
        pass
    assert extractor.layer_size() == layer_size(str(tmp_path))


@pytest.mark.parametrize(("size", "forked"), [(100, True), (3000, False)])
def test_the_child_takes_over_once_a_window_of_members_is_small_files(
    tmp_path: Path, size: int, forked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "FORK_CHECK_EVERY", 4)
    monkeypatch.setattr(pipeline, "SMALL_FILE", 1000)
    started: list[int] = []

    class Spy(ExtractProcess):
        def __init__(self, extractor: Extractor, start: int = 0) -> None:
            started.append(start)
            super().__init__(extractor, start)

    monkeypatch.setattr(pipeline, "ExtractProcess", Spy)
    layer = LayerBuilder()
    for i in range(10):
        layer.file("f%d" % i, bytes([i]) * size)
    result, diff = _unpack(tmp_path, "child", layer.build())
    assert isinstance(result, LayerResult)
    assert started == ([4] if forked else [])
    assert sorted(os.listdir(diff)) == ["f%d" % i for i in range(10)]
    assert all((diff / ("f%d" % i)).read_bytes() == bytes([i]) * size for i in range(10))
