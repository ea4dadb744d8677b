"""The containerd store's pure parts: Go varints and times, dialect selection, namespace names,
child labels, and PullOptions picking the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from emustore.engines import DOCKER_20_10, DOCKER_26, DOCKER_28, dialect_for
from emustore.errors import UsageError
from emustore.manifest import DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG, Descriptor
from emustore.pull import PullOptions
from emustore.stores.containerd.codec import go_time, read_uvarint, read_varint, uvarint, varint
from emustore.stores.containerd.store import ContainerdStore, _child_labels, check_namespace
from emustore.stores.docker.store import DockerStore


@pytest.mark.parametrize(
    "value, encoded",
    [(0, b"\x00"), (3, b"\x06"), (4, b"\x08"), (-1, b"\x01"), (300, b"\xd8\x04"), (1 << 40, b"\x80" * 5 + b"\x40"), (12288, b"\x80\xc0\x01")],
)
def test_varint_is_gos_zigzag(value: int, encoded: bytes) -> None:
    assert varint(value) == encoded
    assert read_varint(encoded) == value


def test_uvarint_round_trip_and_bounds() -> None:
    for value in (0, 1, 127, 128, 16383, 16384, (1 << 64) - 1):
        data = uvarint(value)
        assert read_uvarint(data + b"tail") == (value, len(data))
    for bad in (b"", b"\x80", b"\xff" * 11):
        with pytest.raises(ValueError):
            read_uvarint(bad)


def test_go_time_marshal_binary() -> None:
    # 1970-01-01T00:00:01.5Z: 62135596801 s since year 1, 500000000 ns, UTC
    assert go_time(1_500_000_000) == b"\x01" + (62135596801).to_bytes(8, "big") + (500000000).to_bytes(4, "big") + b"\xff\xff"


@pytest.mark.parametrize(
    "name, dialect", [("containerd-1.6", DOCKER_20_10), ("containerd-1.7.24", DOCKER_26), ("containerd-2.1", DOCKER_28)]
)
def test_containerd_versions_pick_the_docker_that_ships_them(name: str, dialect: object) -> None:
    assert dialect_for(name) == dialect


@pytest.mark.parametrize("name", ["containerd-1.5", "containerd-3.0", "containerd-x"])
def test_unknown_containerd_versions_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="containerd-1.6, containerd-1.7 or containerd-2.1"):
        dialect_for(name)


@pytest.mark.parametrize("name", ["default", "moby", "k8s.io", "a-b_c.d"])
def test_namespaces_accepted(name: str) -> None:
    assert check_namespace(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-a", "a..b", "x" * 77])
def test_namespaces_refused(name: str) -> None:
    with pytest.raises(UsageError):
        check_namespace(name)


def _desc(media_type: str, n: int) -> Descriptor:
    return Descriptor(media_type, "sha256:" + "%064x" % n, 1)


def test_child_labels_number_each_kind_on_its_own() -> None:
    config = _desc(OCI_CONFIG, 0)
    labels = _child_labels([_desc(DOCKER_LAYER, 1), _desc("application/vnd.in-toto+json", 2), _desc(DOCKER_LAYER, 3)], config)
    assert labels == {
        "containerd.io/gc.ref.content.config": config.digest,
        "containerd.io/gc.ref.content.l.0": _desc(DOCKER_LAYER, 1).digest,
        "containerd.io/gc.ref.content.0": _desc(DOCKER_LAYER, 2).digest,
        "containerd.io/gc.ref.content.l.1": _desc(DOCKER_LAYER, 3).digest,
    }
    assert _child_labels([_desc(DOCKER_MANIFEST, 5)]) == {"containerd.io/gc.ref.content.m.0": _desc(DOCKER_MANIFEST, 5).digest}


def test_pull_options_pick_the_store(tmp_path: Path) -> None:
    assert isinstance(PullOptions().destination(tmp_path), DockerStore)
    store = PullOptions(store="containerd", namespace="k8s.io", engine="containerd-2.1").destination(tmp_path)
    assert isinstance(store, ContainerdStore)
    assert (store.namespace, store.dialect.version, store.keeps_every_manifest) == ("k8s.io", "2.1", True)
    with pytest.raises(UsageError, match="unknown store"):
        PullOptions(store="podman")


def test_containerd_unpacking_keeps_no_tar_split_and_containerds_xattr_rules() -> None:
    docker_options, containerd_options = PullOptions(engine="28"), PullOptions(engine="28", store="containerd")
    docker = docker_options.destination("/nonexistent").unpacking(docker_options.unpacking())
    ours = containerd_options.destination("/nonexistent").unpacking(containerd_options.unpacking())
    assert docker.skipped_xattrs == () and docker.dialect.symlink_xattrs_on_target
    assert ours.skipped_xattrs == (b"trusted.",)
    assert ours.dialect.empty_xattrs and not ours.dialect.symlink_xattrs_on_target


def test_a_staged_blob_on_another_file_system_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import hashlib
    import os

    from emustore.stores.containerd.content import ContentStore
    from emustore.stores.containerd.layout import ContainerdRoot

    layout = ContainerdRoot(tmp_path / "root")
    layout.prepare_store()
    data = b"layer bytes" * 100000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    staged = layout.staging / "x.blob"
    staged.write_bytes(data)
    real_rename = os.rename

    def rename(source: object, target: object) -> None:
        if str(source) == str(staged):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    ContentStore(layout).publish(staged, digest)
    assert layout.blob(digest).read_bytes() == data
    assert os.stat(layout.blob(digest)).st_mode & 0o777 == 0o444
    assert not staged.exists() and list(ContentStore(layout).temp_files()) == []


def test_a_stale_snapshot_record_is_replaced_with_its_parent_link(tmp_path: Path) -> None:
    """A key left by a writer killed before meta.db's commit is recorded again by the next one:
    one record, one parents entry, the new id."""
    from emustore.bbolt.reader import dump
    from emustore.stores.containerd.layout import ContainerdRoot
    from emustore.stores.containerd.snapshots import NewSnapshot, Snapshotter, Usage

    layout = ContainerdRoot(tmp_path / "root")
    layout.prepare_store()
    snapshotter = Snapshotter(layout)
    base, child = NewSnapshot("default/2/sha256:a", None, Usage(1, 4096), {}), NewSnapshot("default/4/sha256:b", "default/2/sha256:a", Usage(2, 8192), {})
    assert snapshotter.record([base, child]) == [1, 2]
    assert snapshotter.record([child]) == [3]
    v1 = dump(layout.metadata_db)["buckets"][b"v1"]
    assert v1["buckets"][b"parents"]["values"] == {b"\x01\x00\x03": b"default/4/sha256:b"}
    assert snapshotter.ids() == {"default/2/sha256:a": 1, "default/4/sha256:b": 3}
    assert v1["buckets"][b"snapshots"]["sequence"] == 3
