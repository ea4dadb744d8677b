"""The containerd store's read side without a daemon: the garbage collector's marking, ctr's number
and table formats, and hostile meta.db records (one-line errors, nothing read outside the root)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from emustore.api import Store
from emustore.bbolt.writer import update
from emustore.display import binary_size, ctr_table
from emustore.errors import EmustoreError
from emustore.stores.containerd.codec import go_time, read_go_time, varint
from emustore.stores.containerd.gc import collect
from emustore.stores.containerd.layout import ContainerdRoot
from emustore.stores.containerd.metadata import Holder, NamespaceRecords, StoredContent, StoredImage, StoredSnapshot
from tests.support.figures import record


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


INDEX, MANIFEST, CONFIG, LAYER, ORPHAN, LEASED, ROOTED = (_digest(n) for n in ("i", "m", "c", "l", "o", "leased", "rooted"))


def _namespace(images: bool = True, holders: list[Holder] | None = None) -> NamespaceRecords:
    contents = {
        INDEX: StoredContent(INDEX, 1, {"containerd.io/gc.ref.content.m.0": MANIFEST, "containerd.io/gc.ref.content.m.1": _digest("gone")}),
        MANIFEST: StoredContent(MANIFEST, 1, {"containerd.io/gc.ref.content.config": CONFIG, "containerd.io/gc.ref.content.l.0": LAYER}),
        CONFIG: StoredContent(CONFIG, 1, {"containerd.io/gc.ref.snapshot.overlayfs": "top"}),
        LAYER: StoredContent(LAYER, 1, {"containerd.io/uncompressed": _digest("diff")}),
        ORPHAN: StoredContent(ORPHAN, 1, {}),
        LEASED: StoredContent(LEASED, 1, {}),
        ROOTED: StoredContent(ROOTED, 1, {"containerd.io/gc.root": ""}),
    }
    snapshots = {
        "base": StoredSnapshot("base", "ns/2/base", None, {}),
        "top": StoredSnapshot("top", "ns/4/top", "base", {}),
        "stray": StoredSnapshot("stray", "ns/6/stray", "base", {}),
    }
    image = StoredImage("x:v1", INDEX, "application/vnd.oci.image.index.v1+json", 1, {}, "", "")
    return NamespaceRecords("ns", {image.name: image} if images else {}, contents, snapshots, holders or [], frozenset())


def test_collector_follows_gc_refs_and_parents() -> None:
    lease = Holder("lease", "l1", frozenset({LEASED}), frozenset(), {})
    garbage = collect({"ns": _namespace(holders=[lease])})
    assert garbage.contents == {"ns": {ORPHAN}}
    assert garbage.snapshots == {"ns": {"stray"}}


def test_collector_without_images_keeps_only_roots_and_unexpired_leases() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    held = Holder("lease", "fresh", frozenset({LEASED}), frozenset({("overlayfs", "stray")}), {"containerd.io/gc.expire": "2027-01-01T00:00:00Z"})
    expired = Holder("lease", "old", frozenset({CONFIG}), frozenset(), {"containerd.io/gc.expire": "2025-01-01T00:00:00Z"})
    container = Holder("container", "c", frozenset(), frozenset({("overlayfs", "top")}), {})
    garbage = collect({"ns": _namespace(images=False, holders=[held, expired, container])}, now)
    assert garbage.contents == {"ns": {INDEX, MANIFEST, CONFIG, LAYER, ORPHAN}}
    assert "ns" not in garbage.snapshots  # "stray" leased, "top" a container's, "base" its parent
    other = collect({"ns": _namespace(), "empty": _namespace(images=False)})
    assert other.contents["empty"] == {INDEX, MANIFEST, CONFIG, LAYER, ORPHAN, LEASED}  # each namespace on its own


def test_ctr_formats() -> None:
    assert [binary_size(n) for n in (0, 907, 1033728, 1998848, 3 << 30)] == ["0.0 B", "907.0 B", "1009.5 KiB", "1.9 MiB", "3.0 GiB"]
    assert ctr_table(["REF", "LABELS"], [["a:v1", "-"], ["bb:v1", "k=v"]]) == "REF   LABELS \na:v1  -      \nbb:v1 k=v    \n"
    stamp = go_time(1_700_000_000_123_456_789)
    assert read_go_time(stamp) == "2023-11-14T22:13:20.123456789Z"
    with pytest.raises(ValueError):
        read_go_time(b"\x01" + b"\x00" * 5)


def _hostile_root(tmp_path: Path, target: bytes, key: bytes = b"x:v1") -> Path:
    root = tmp_path / "root"
    layout = ContainerdRoot(root)
    layout.meta_db.parent.mkdir(parents=True)
    with update(layout.meta_db, create=True) as db:
        ns = db.create_bucket_if_not_exists(b"v1").create_bucket_if_not_exists(b"default")
        image = ns.create_bucket(b"images").create_bucket(key)
        image.put(b"createdat", go_time())
        t = image.create_bucket(b"target")
        t.put(b"digest", target)
        t.put(b"mediatype", b"application/vnd.oci.image.manifest.v1+json")
        t.put(b"size", varint(10))
    return root


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=60)


HOSTILE_TARGETS = (b"sha256:../../../../etc/passwd", b"sha256:" + b"0" * 64, b"not a digest", b"\xff\xfe")


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_image_records_give_one_line(tmp_path: Path, target: bytes) -> None:
    """A target naming a path, a missing blob, or not UTF-8: every command answers in one line or
    reports the image as missing; nothing outside the root is read or changed."""
    root = _hostile_root(tmp_path, target)
    base = ["--store", "containerd", "--root", str(root)]
    outcomes, one_line = [], 0
    for args in (["images"], ["inspect", "x:v1"], ["fsck"], ["explain", "x:v1"], ["save", "-o", str(tmp_path / "o.tar"), "x:v1"], ["du"]):
        done = _cli(args[0], *base, *args[1:])
        assert "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) <= 1 or args[0] == "fsck", done.stderr
        assert "root:x:0:0" not in done.stdout
        outcomes.append(done.returncode)
        one_line += done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    if target.startswith(b"sha256:") and b".." not in target:
        [document] = json.loads(_cli("inspect", *base, "x:v1").stdout)
        assert document["Check"]["status"] == "missing"
    assert not (tmp_path / "o.tar").exists()  # an incomplete image is never saved
    record("test_hostile_image_records_give_one_line[%r]" % target[:12], commands=len(outcomes),
           failed=sum(1 for code in outcomes if code), one_line_errors=one_line)


def test_non_utf8_names_are_one_line_errors(tmp_path: Path) -> None:
    root = _hostile_root(tmp_path, b"sha256:" + b"0" * 64, key=b"\xff:v1")
    with pytest.raises(EmustoreError) as error:
        Store(root).containerd().images()
    assert "not UTF-8" in str(error.value) and "\n" not in str(error.value)


def test_rmi_of_a_missing_image_or_root_changes_nothing(tmp_path: Path) -> None:
    missing = Store(tmp_path / "none").containerd()
    for call in (lambda: missing.remove(["x:v1"]), missing.images, missing.disk_usage, missing.fsck, lambda: missing.inspect("x")):
        with pytest.raises(EmustoreError) as error:
            call()
        assert str(error.value) == "no containerd root at %s" % (tmp_path / "none")
    assert not (tmp_path / "none").exists()
    root = _hostile_root(tmp_path, b"sha256:" + b"0" * 64)
    before = ContainerdRoot(root).meta_db.read_bytes()
    with pytest.raises(EmustoreError):
        Store(root).containerd().remove(["y:v1"])
    assert ContainerdRoot(root).meta_db.read_bytes() == before
