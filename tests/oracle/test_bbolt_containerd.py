"""Our bbolt reader and writer against the real thing: the meta.db (and the overlayfs snapshotter's
metadata.db) that containerd 1.6.20, 1.7.24 and 2.1.9 write.

For each version, a private containerd (tests/support/containerd.py) creates namespaces and labels,
ingests labelled content and imports a small image archive (unpacked: snapshots and their bucket
sequences). Our reader must read back what `ctr` lists. Then our writer, with the daemon stopped,
adds a namespace, labels, a namespace of thousands of labels (branch pages), a label too large for a
page (overflow) and removes a namespace; the same containerd started again must list exactly that,
keep writing (a label, a namespace), and its writes must read back through our reader. While the
daemon runs, our writer and reader are refused by its flock. Our writer killed (SIGKILL) at random
points of its commits leaves a store holding only whole commits, which containerd opens and extends.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from emustore.bbolt.pages import NO_FREELIST
from emustore.bbolt.reader import BucketDump, dump, open_db
from emustore.bbolt.writer import update
from emustore.errors import StoreError
from tests.support.containerd import CONTAINERD_VERSIONS, Containerd, meta_db
from tests.support.figures import record
from tests.support.imagebuild import ImageBuilder
from tests.support.tarlayer import LayerBuilder

pytestmark = [pytest.mark.oracle]

VERSION_VALUE = {"1.6": b"\x06", "1.7": b"\x06", "2.1": b"\x08"}  # zigzag varints of 3 and 4
BLOBS = [b"blob %d\n" % index * (index + 1) for index in range(5)]
BIG_LABELS = 2500
LARGE_LABEL = "x" * 10000
KILL_TRIALS, KILL_LABELS = 6, 300


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image_archive(path: Path) -> Path:
    layer = LayerBuilder().dir("etc/").file("etc/hello", b"hello from a local archive\n")
    ImageBuilder().layer(layer, created_by="ADD hello").write_docker_archive(path, "local/bbolt:v1")
    return path


@pytest.fixture(scope="module", params=CONTAINERD_VERSIONS)
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(version, a containerd root that containerd `version` wrote to and was stopped on)."""
    version: str = request.param
    base = tmp_path_factory.mktemp("containerd-" + version)
    with Containerd(version, base / "root") as daemon:
        daemon.ctr("namespaces", "create", "alpha", "team=a", "tier=1")
        daemon.ctr("namespaces", "create", "beta")
        daemon.ctr("namespaces", "create", "doomed")
        for index, blob in enumerate(BLOBS):  # gc.root: the collector at the next start keeps them
            daemon.ctr("-n", "alpha", "content", "ingest", "--expected-digest", _digest(blob), "r%d" % index, stdin=blob)
            daemon.ctr("-n", "alpha", "content", "label", _digest(blob), "containerd.io/gc.root=yes")
        daemon.ctr("-n", "beta", "images", "import", str(_image_archive(base / "image.tar")))
        with pytest.raises(StoreError, match="locked by another process"):
            with update(meta_db(daemon.root)):
                pass
        with pytest.raises(StoreError, match="locked by another process"):
            dump(meta_db(daemon.root))
    return version, daemon.root


def _namespaces(listing: str) -> dict[str, str]:
    """`ctr namespaces ls` → {name: labels column}."""
    rows = [line.split(None, 1) for line in listing.splitlines()[1:] if line.strip()]
    return {row[0]: row[1].strip() if len(row) > 1 else "" for row in rows}


def _labels(tree: BucketDump, namespace: bytes) -> dict[bytes, bytes]:
    return tree["buckets"][b"v1"]["buckets"][namespace]["buckets"].get(b"labels", {"values": {}})["values"]  # type: ignore[typeddict-item]


def _uvarint(data: bytes) -> int:
    """A Go uvarint."""
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


def _varint(data: bytes) -> int:
    """A Go (zigzag) varint."""
    value = _uvarint(data)
    return (value >> 1) ^ -(value & 1)


def test_reader_reads_what_containerd_wrote(written: tuple[str, Path]) -> None:
    version, root = written
    tree = dump(meta_db(root))
    v1 = tree["buckets"][b"v1"]
    assert v1["values"][b"version"] == VERSION_VALUE[version]
    with Containerd(version, root) as daemon:
        namespaces = _namespaces(daemon.ctr("namespaces", "ls"))
        content = daemon.ctr("-n", "alpha", "content", "ls", "-q").split()
        images = daemon.ctr("-n", "beta", "images", "ls", "-q").split()
        snapshots = [line.split()[0] for line in daemon.ctr("-n", "beta", "snapshots", "ls").splitlines()[1:]]
    assert sorted(namespaces) == sorted(name.decode() for name in v1["buckets"]) == ["alpha", "beta", "doomed"]
    assert _labels(tree, b"alpha") == {b"team": b"a", b"tier": b"1"}
    blobs = v1["buckets"][b"alpha"]["buckets"][b"content"]["buckets"][b"blob"]["buckets"]
    assert sorted(content) == sorted(key.decode() for key in blobs) == sorted(_digest(blob) for blob in BLOBS)
    assert {_varint(blobs[_digest(blob).encode()]["values"][b"size"]) for blob in BLOBS} == {len(blob) for blob in BLOBS}
    assert blobs[_digest(BLOBS[0]).encode()]["buckets"][b"labels"]["values"] == {b"containerd.io/gc.root": b"yes"}
    beta = v1["buckets"][b"beta"]["buckets"]
    assert images == [key.decode() for key in beta[b"images"]["buckets"]] == ["docker.io/local/bbolt:v1"]
    overlay = beta[b"snapshots"]["buckets"][b"overlayfs"]
    assert sorted(snapshots) == sorted(key.decode() for key in overlay["buckets"]) and snapshots
    assert overlay["sequence"] >= len(snapshots)
    snapshotter = dump(root / "io.containerd.snapshotter.v1.overlayfs" / "metadata.db")
    named = snapshotter["buckets"][b"v1"]["buckets"][b"snapshots"]
    assert sorted(name.split(b"/")[-1].decode() for name in named["buckets"]) == sorted(snapshots)
    assert named["sequence"] >= max(_uvarint(bucket["values"][b"id"]) for bucket in named["buckets"].values())


def test_writer_extends_what_containerd_wrote_and_containerd_keeps_working(written: tuple[str, Path], tmp_path: Path) -> None:
    version, original = written
    root = tmp_path / "root"
    shutil.copytree(original, root, symlinks=True)
    path = meta_db(root)
    with open_db(path) as db:
        had_freelist = db.meta.freelist != NO_FREELIST
        txid = db.meta.txid
    assert had_freelist == (version == "1.6")  # 1.7 and 2.x write no freelist page (NoFreelistSync)
    with update(path) as top:
        v1 = top.bucket(b"v1")
        assert v1 is not None
        v1.create_bucket(b"emu").create_bucket(b"labels").put(b"made-by", b"emustore")
        alpha = v1.bucket(b"alpha")
        assert alpha is not None and alpha.bucket(b"labels") is not None
        alpha.bucket(b"labels").put(b"added", b"yes")  # type: ignore[union-attr]
        big = v1.create_bucket(b"big").create_bucket(b"labels")
        for index in range(BIG_LABELS):
            big.put(b"label-%05d" % index, b"value-%05d" % index)
        big.put(b"large", LARGE_LABEL.encode())
        v1.delete_bucket(b"doomed")
    with open_db(path) as db:
        assert (db.meta.freelist != NO_FREELIST) == had_freelist and db.meta.txid == txid + 1
        if had_freelist:
            assert db.freelist() == db.free_pages()
        labels = db.root.bucket(b"v1").bucket(b"big").bucket(b"labels")  # type: ignore[union-attr]
        assert labels is not None and db.page(labels.root, 0x03)[0].flags == 0x01  # split: a branch page
    before = dump(path)
    with Containerd(version, root) as daemon:
        namespaces = _namespaces(daemon.ctr("namespaces", "ls"))
        big_labels = dict(
            pair.split("=", 1) for pair in namespaces["big"].split(",")
        )
        daemon.ctr("namespaces", "label", "emu", "second=label")
        daemon.ctr("namespaces", "create", "after")
        daemon.ctr("-n", "big", "content", "ingest", "--expected-digest", _digest(b"late\n"), "late", stdin=b"late\n")
        daemon.ctr("-n", "big", "content", "label", _digest(b"late\n"), "containerd.io/gc.root=yes")
        content = daemon.ctr("-n", "alpha", "content", "ls", "-q").split()
        images = daemon.ctr("-n", "beta", "images", "ls", "-q").split()
    assert sorted(namespaces) == ["alpha", "beta", "big", "emu"]
    assert namespaces["emu"] == "made-by=emustore"
    assert "added=yes" in namespaces["alpha"].split(",") and "team=a" in namespaces["alpha"].split(",")
    assert len(big_labels) == BIG_LABELS + 1 and big_labels["large"] == LARGE_LABEL
    assert big_labels["label-01234"] == "value-01234"
    assert sorted(content) == sorted(_digest(blob) for blob in BLOBS) and images == ["docker.io/local/bbolt:v1"]
    after = dump(path)
    v1_after = after["buckets"][b"v1"]["buckets"]
    assert sorted(v1_after) == [b"after", b"alpha", b"beta", b"big", b"emu"]
    assert _labels(after, b"emu") == {b"made-by": b"emustore", b"second": b"label"}
    assert _labels(after, b"big") == _labels(before, b"big")
    assert _digest(b"late\n").encode() in v1_after[b"big"]["buckets"][b"content"]["buckets"][b"blob"]["buckets"]
    with update(path) as top:  # and ours again on top of containerd's latest commit
        top.bucket(b"v1").bucket(b"after").create_bucket_if_not_exists(b"labels").put(b"again", b"1")  # type: ignore[union-attr]
    with Containerd(version, root) as daemon:
        assert _namespaces(daemon.ctr("namespaces", "ls"))["after"] == "again=1"


def _commit_namespaces(path: Path, trial: int) -> None:
    """In a forked child: commit namespaces kill-<trial>-<n>, each with all its labels, until killed."""
    try:
        for index in range(1000):
            with update(path) as top:
                labels = top.create_bucket_if_not_exists(b"v1").create_bucket(b"kill-%d-%d" % (trial, index)).create_bucket(b"labels")
                for label in range(KILL_LABELS):
                    labels.put(b"label-%04d" % label, b"%d" % index * 40)
    finally:
        os._exit(0)


def test_our_writer_killed_mid_commit_leaves_a_store_containerd_opens(written: tuple[str, Path], tmp_path: Path) -> None:
    version, original = written
    root = tmp_path / "root"
    shutil.copytree(original, root, symlinks=True)
    path = meta_db(root)
    rng = random.Random(version)
    progressed = 0
    for trial in range(KILL_TRIALS):
        before = dump(path)
        pid = os.fork()
        if pid == 0:
            _commit_namespaces(path, trial)
        time.sleep(rng.uniform(0.01, 0.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        tree = dump(path)
        progressed += tree != before
        namespaces = tree["buckets"][b"v1"]["buckets"]
        for name, namespace in namespaces.items():  # each commit whole or absent
            if name.startswith(b"kill-"):
                assert len(namespace["buckets"][b"labels"]["values"]) == KILL_LABELS, name
        with Containerd(version, root) as daemon:
            listed = _namespaces(daemon.ctr("namespaces", "ls"))
            daemon.ctr("namespaces", "create", "after-%d" % trial)  # and it writes on top
        assert sorted(listed) == sorted(name.decode() for name in namespaces)
        assert all(len(listed[name.decode()].split(",")) == KILL_LABELS for name in namespaces if name.startswith(b"kill-"))
    record("bbolt sigkill, containerd %s opens" % version, kills=KILL_TRIALS, changed_states=progressed, refused=0)
    assert progressed > 0
