"""Staging sets: what a dead writer left is removed by the next one (and by fsck --repair), a live
writer's staging never is; an unusable root is refused before anything is read from the source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.errors import StoreError
from emustore.fsck import check, repair
from emustore.pull import pull
from emustore.stores.docker.staging import create_set
from emustore.stores.docker.store import DockerStore
from tests.support.figures import record

CACHE_ID = "ab" * 32
LINK_ID = "A" * 26

_HOLDER = """
import sys, time
from pathlib import Path
from emustore.stores.docker.staging import create_set
from emustore.stores.docker.layout import DataRoot
owned = create_set(DataRoot(Path(sys.argv[1])), "pull")
(owned.dir / "partial").write_bytes(b"x")
print(owned.dir, flush=True)
time.sleep(120)
"""


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _hold_set(root: Path, holders: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], Path]:
    """Another process owning a staging set in `root` (with a file in it), and the set's dir."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    holders.append(proc)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def _killed_set(root: Path, holders: list[subprocess.Popen[str]]) -> Path:
    proc, set_dir = _hold_set(root, holders)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return set_dir


def _half_registered(store: DockerStore, set_dir: Path) -> list[Path]:
    """What a pull killed inside registration leaves: a layer dir renamed into overlay2/ with its
    l/ link while its write-set (the commit) was still staged, and an index temp file."""
    store.layout.prepare_store()
    layer = store.overlay2.layer_dir(CACHE_ID)
    (layer / "diff").mkdir(parents=True)
    (layer / "link").write_text(LINK_ID)
    os.symlink(f"../{CACHE_ID}/diff", store.layout.links / LINK_ID)
    (set_dir / (CACHE_ID + ".layerdb")).mkdir()
    (set_dir / (CACHE_ID + ".layerdb" + "/diff")).write_text("sha256:" + "0" * 64)
    temp = store.layout.image / ".tmp-repositories.json123"
    temp.write_text("{")
    return [layer, store.layout.links / LINK_ID, temp]


def test_the_next_writer_removes_a_dead_writers_staging_and_half_registered_layer(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    store = DockerStore(tmp_path / "root")
    dead = _killed_set(store.layout.root, holders)
    published = _half_registered(store, dead)
    legacy = store.layout.staging / "0123abcd"  # scratch without a lock (an older emustore's)
    (legacy / "diff").mkdir(parents=True)
    assert {p.path for p in check(store.layout.root) if p.leftover} >= {dead, legacy, *published}
    with store.staging("pull") as owned:
        assert sorted(os.listdir(store.layout.staging)) == sorted([owned.dir.name, owned.lock.name])
    for path in [dead, legacy, *published]:
        assert not os.path.lexists(path), path
    assert check(store.layout.root) == []
    record("staging of a dead writer", trials=1, removed=2 + len(published), leftovers_after=0)


def test_a_live_writers_staging_is_never_removed(tmp_path: Path, holders: list[subprocess.Popen[str]]) -> None:
    store = DockerStore(tmp_path / "root")
    _, live = _hold_set(store.layout.root, holders)
    with store.staging("load") as mine:  # and one held in this very process, by another open file
        with store.staging("create"):
            assert store.remove_abandoned() == []
        assert [p for p in check(store.layout.root) if p.leftover] == []
        assert repair(store.layout.root) == []
        assert (live / "partial").read_bytes() == b"x" and mine.dir.is_dir()
    assert sorted(os.listdir(store.layout.staging)) == sorted([live.name, live.name + ".lock"])


def test_fsck_reports_a_dead_set_and_repair_removes_it(tmp_path: Path, holders: list[subprocess.Popen[str]]) -> None:
    root = tmp_path / "root"
    dead = _killed_set(root, holders)
    lock = dead.with_name(dead.name + ".lock")
    assert [(p.path, p.message) for p in check(root)] == [
        (dead, "leftover of an interrupted pull"),
        (lock, "lock of the staging of an interrupted pull"),
    ]
    assert repair(root) == [dead, lock]
    assert check(root) == []


def test_sets_are_private_and_go_away_with_their_block(tmp_path: Path) -> None:
    store = DockerStore(tmp_path / "root")
    with store.staging("pull") as first, store.staging("pull") as second:
        assert first.dir != second.dir and first.dir.parent == store.layout.staging
        assert os.stat(first.dir).st_mode & 0o777 == 0o700
    assert os.listdir(store.layout.staging) == []


class _NeverRead:
    """A source that fails the test if anything is read from it."""

    closed = False

    def resolve(self) -> object:
        raise AssertionError("the source was read before the root was checked")

    def open_layer(self, desc: object) -> object:
        raise AssertionError("the source was read before the root was checked")

    def close(self) -> None:
        self.closed = True


def _unusable_roots(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "file").write_bytes(b"")
    os.symlink("nowhere", tmp_path / "dangling")
    (tmp_path / "tmp-is-a-file").mkdir()
    (tmp_path / "tmp-is-a-file" / "tmp").write_bytes(b"")
    return {
        "file": (tmp_path / "file", "it is not a directory"),
        "dangling symlink": (tmp_path / "dangling", "it is a symlink to nowhere, which does not exist"),
        "missing parent": (tmp_path / "none" / "root", f"its parent {tmp_path / 'none'} does not exist"),
        "parent is a file": (tmp_path / "file" / "root", f"its parent {tmp_path / 'file'} is not a directory"),
        "tmp is a file": (
            tmp_path / "tmp-is-a-file",
            f"{tmp_path / 'tmp-is-a-file' / 'tmp' / 'emustore-staging'}: Not a directory",
        ),
    }


def test_an_unusable_root_is_refused_in_one_line_before_the_source_is_read(tmp_path: Path) -> None:
    cases = _unusable_roots(tmp_path)
    for name, (root, why) in cases.items():
        source = _NeverRead()
        with pytest.raises(StoreError) as raised:
            pull("127.0.0.1:5000/x/y:v1", root, source=source)  # type: ignore[arg-type]
        assert str(raised.value) == f"cannot use {root} as a data root: {why}", name
        assert source.closed, name
    record("unusable roots", cases=len(cases), refused_before_reading=len(cases))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_a_root_on_a_read_only_file_system_is_refused(tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(mount)], check=True)
    try:
        for root, failing in ((mount, mount / "tmp"), (mount / "root", mount / "root")):
            with pytest.raises(StoreError) as raised:
                pull("127.0.0.1:5000/x/y:v1", root, source=_NeverRead())  # type: ignore[arg-type]
            assert str(raised.value) == f"cannot use {root} as a data root: {failing}: Read-only file system"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_set_whose_lock_a_cleaner_took_is_drawn_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock file is made, then locked: a cleaner that removed it in between makes the writer
    draw another name instead of staging in a set nobody can see is live."""
    store = DockerStore(tmp_path / "root")
    real_open = os.open
    removed: list[str] = []

    def open_then_lose(path: object, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)  # type: ignore[arg-type]
        if str(path).endswith(".lock") and flags & os.O_EXCL and not removed:
            os.unlink(path)  # type: ignore[arg-type]
            removed.append(str(path))
        return fd

    monkeypatch.setattr(os, "open", open_then_lose)
    owned = create_set(store.layout, "pull")
    monkeypatch.undo()
    try:
        assert removed and owned.lock.exists() and str(owned.lock) != removed[0]
    finally:
        owned.remove()
