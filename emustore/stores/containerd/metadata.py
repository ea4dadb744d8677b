"""meta.db, containerd's metadata database: the one owner of its buckets (containerd-store-format.md §2).

Per namespace: content records (size, times, labels), images (name → target descriptor), the
snapshots of the overlayfs snapshotter (chain id → the snapshotter's key, parent, children,
labels) and the bucket sequence snapshot keys are numbered from. Read under bbolt's shared
flock, written in one copy-on-write transaction (emustore.bbolt) under its exclusive flock: a
running containerd holds it, so both are refused while one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from emustore.bbolt.reader import Bucket, open_db
from emustore.bbolt.writer import WriteBucket, update
from emustore.errors import StoreError
from emustore.stores.containerd.codec import go_time, read_go_time, read_varint, varint
from emustore.stores.containerd.layout import SNAPSHOTTER

SOURCE_LABEL = "containerd.io/distribution.source."
DB_MODE = 0o644


@dataclass(frozen=True)
class ContentRecord:
    digest: str
    size: int
    labels: dict[str, str]
    touched: bool = True  # the pull goes through it: when already there, it gets the source too


@dataclass(frozen=True)
class SnapshotRecord:
    chain_id: str
    key: str  # the snapshotter's name: "<namespace>/<n>/<chain id>"
    parent: str | None
    labels: dict[str, str]


@dataclass(frozen=True)
class ImageRecord:
    name: str  # the full reference, e.g. "docker.io/library/busybox:latest"
    digest: str
    media_type: str
    size: int


@dataclass
class MetaChanges:
    """What one pull adds to a namespace; `source` (label key, repository) labels every blob it
    wrote, and is added to the label of each blob already there that it went through (`touched`)."""

    contents: list[ContentRecord] = field(default_factory=list)
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)
    source: tuple[str, str] | None = None
    sequence: int = 0  # the snapshots bucket's sequence after the snapshots (keys numbered below it)


@dataclass(frozen=True)
class NamespaceState:
    """What a namespace holds, as a pull needs to know it."""

    snapshots: dict[str, str]  # chain id → the snapshotter's key
    blobs: frozenset[str]  # content digests
    sequence: int  # of snapshots/overlayfs


EMPTY = NamespaceState({}, frozenset(), 0)


@dataclass(frozen=True)
class StoredImage:
    """An image record as containerd keeps it: name, target descriptor, labels, times (RFC 3339)."""

    name: str
    digest: str
    media_type: str
    size: int
    labels: dict[str, str]
    created: str
    updated: str


@dataclass(frozen=True)
class StoredContent:
    digest: str
    size: int
    labels: dict[str, str]


@dataclass(frozen=True)
class StoredSnapshot:
    chain_id: str  # the key in meta.db (containerd's snapshot name in the namespace)
    key: str  # the snapshotter's name: "<namespace>/<n>/<chain id>"
    parent: str | None
    labels: dict[str, str]


@dataclass(frozen=True)
class Holder:
    """What else keeps resources alive for the garbage collector: a lease (its content and snapshots,
    unless expired) or a container (its snapshot); both with their labels."""

    kind: str  # "lease" or "container"
    name: str
    contents: frozenset[str]
    snapshots: frozenset[tuple[str, str]]  # (snapshotter, key)
    labels: dict[str, str]


@dataclass(frozen=True)
class NamespaceRecords:
    """Everything the image store keeps in one namespace of meta.db."""

    name: str
    images: dict[str, StoredImage]
    contents: dict[str, StoredContent]
    snapshots: dict[str, StoredSnapshot]  # of the overlayfs snapshotter, by chain id
    holders: list[Holder]
    other_snapshotters: frozenset[str]  # snapshots of snapshotters we do not manage (left alone)


class MetaDB:
    def __init__(self, path: Path, namespace: str) -> None:
        self.path = path
        self.namespace = namespace.encode()

    def state(self) -> NamespaceState:
        """The namespace's snapshots, blobs and snapshot sequence (empty when there is no database)."""
        if not self.path.exists():
            return EMPTY
        with open_db(self.path) as db:
            ns = _path(db.root, b"v1", self.namespace)
            if ns is None:
                return EMPTY
            blobs = _path(ns, b"content", b"blob")
            snaps = _path(ns, b"snapshots", SNAPSHOTTER.encode())
            return NamespaceState(
                _snapshot_keys(snaps) if snaps is not None else {},
                frozenset(key.decode() for key in blobs.buckets()) if blobs is not None else frozenset(),
                snaps.sequence if snaps is not None else 0,
            )

    def snapshot_keys(self) -> set[str]:
        """The snapshotter key of every snapshot of every namespace (what the snapshotter must keep)."""
        return self._every_namespace(lambda snaps: set(_snapshot_keys(snaps).values()), b"snapshots", SNAPSHOTTER.encode())

    def blob_digests(self) -> set[str]:
        """The digest of every content record of every namespace (what the content store must keep)."""
        return self._every_namespace(lambda blobs: {key.decode(errors="replace") for key in blobs.buckets()}, b"content", b"blob")

    def _every_namespace(self, found: Callable[[Bucket], set[str]], *path: bytes) -> set[str]:
        """The union of `found` over the bucket at `path` of each namespace (none without a database)."""
        if not self.path.exists():
            return set()
        union: set[str] = set()
        with open_db(self.path) as db:
            v1 = db.root.bucket(b"v1")
            for ns_name in list(v1.buckets()) if v1 is not None else []:
                bucket = _path(v1, ns_name, *path)
                union |= found(bucket) if bucket is not None else set()
        return union

    def schema(self) -> int | None:
        """v1/version: 3 as containerd 1.x writes it, 4 as 2.x does (None without a database)."""
        if not self.path.exists():
            return None
        with open_db(self.path) as db:
            raw = _path(db.root, b"v1")
            value = raw.get(b"version") if raw is not None else None
        return _number(value, "v1/version") if value is not None else None

    def records(self) -> dict[str, NamespaceRecords]:
        """Every namespace's images, content, snapshots, leases and containers (none without a database)."""
        if not self.path.exists():
            return {}
        found = {}
        with open_db(self.path) as db:
            v1 = db.root.bucket(b"v1")
            for ns_name in list(v1.buckets()) if v1 is not None else []:
                ns = v1.bucket(ns_name) if v1 is not None else None
                if ns is not None:
                    name = _text(ns_name)
                    found[name] = _namespace_records(name, ns)
        return found

    def remove(self, images: dict[str, set[str]], contents: dict[str, set[str]], snapshots: dict[str, set[str]]) -> None:
        """One transaction: image records, content records and overlayfs snapshot records (by chain
        id), each given per namespace. A surviving parent keeps its `children` entry of a removed
        snapshot, as containerd's collector leaves it (observed: ctr images rm --sync, 1.6 and 2.1)."""
        with _transaction(self.path) as root:
            v1 = root.bucket(b"v1")
            for name in sorted(set(images) | set(contents) | set(snapshots)):
                ns = v1.bucket(name.encode()) if v1 is not None else None
                if ns is None:
                    continue
                _delete_all(_write_path(ns, b"images"), images.get(name, set()))
                _delete_all(_write_path(ns, b"content", b"blob"), contents.get(name, set()))
                _delete_all(_write_path(ns, b"snapshots", SNAPSHOTTER.encode()), snapshots.get(name, set()))

    def commit(self, changes: MetaChanges, version: int) -> None:
        """Apply `changes` in one transaction; a new database gets schema `version` (an existing
        one keeps its own: containerd migrates it when it needs to)."""
        with _transaction(self.path) as root:
            v1 = root.create_bucket_if_not_exists(b"v1")
            if v1.get(b"version") is None:
                v1.put(b"version", varint(version))
            ns = v1.create_bucket_if_not_exists(self.namespace)
            content = ns.create_bucket_if_not_exists(b"content")
            blobs = content.create_bucket_if_not_exists(b"blob")
            content.create_bucket_if_not_exists(b"ingests")
            images = ns.create_bucket_if_not_exists(b"images")
            ns.create_bucket_if_not_exists(b"leases")
            snaps = ns.create_bucket_if_not_exists(b"snapshots").create_bucket_if_not_exists(SNAPSHOTTER.encode())
            now = go_time()
            for record in changes.contents:
                _put_content(blobs, record, changes, now)
            for snap in changes.snapshots:
                _put_snapshot(snaps, snap, now)
            snaps.sequence = max(snaps.sequence, changes.sequence)
            for image in changes.images:
                _put_image(images, image, now)


@contextmanager
def _transaction(path: Path) -> Iterator[WriteBucket]:
    with update(path, create=True, mode=DB_MODE) as root:
        yield root


def _path(bucket: Bucket | None, *names: bytes) -> Bucket | None:
    for name in names:
        if bucket is None:
            return None
        bucket = bucket.bucket(name)
    return bucket


def _write_path(bucket: WriteBucket, *names: bytes) -> WriteBucket | None:
    found: WriteBucket | None = bucket
    for name in names:
        found = found.bucket(name) if found is not None else None
    return found


def _delete_all(bucket: WriteBucket | None, names: set[str]) -> None:
    for name in sorted(names):
        if bucket is not None and bucket.bucket(name.encode()) is not None:
            bucket.delete_bucket(name.encode())


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise StoreError("meta.db: a key or value is not UTF-8: %r" % raw[:80]) from None


def _number(raw: bytes | None, what: str) -> int:
    try:
        return read_varint(raw) if raw is not None else 0
    except ValueError:
        raise StoreError("meta.db: %s is not a varint" % what) from None


def _labels(bucket: Bucket | None) -> dict[str, str]:
    labels = bucket.bucket(b"labels") if bucket is not None else None
    return {_text(key): _text(value) for key, value in labels.items()} if labels is not None else {}


def _time(raw: bytes | None) -> str:
    try:
        return read_go_time(raw) if raw is not None else ""
    except ValueError:
        raise StoreError("meta.db: a time is not a Go binary time") from None


def _namespace_records(name: str, ns: Bucket) -> NamespaceRecords:
    images = {}
    for key in _sub_buckets(ns, b"images"):
        record = _path(ns, b"images", key)
        target = _path(record, b"target")
        if record is None or target is None:
            continue
        image = StoredImage(
            _text(key), _text(target.get(b"digest") or b""), _text(target.get(b"mediatype") or b""),
            _number(target.get(b"size"), "an image's size"), _labels(record),
            _time(record.get(b"createdat")), _time(record.get(b"updatedat")),
        )
        images[image.name] = image
    contents = {}
    for key in _sub_buckets(ns, b"content", b"blob"):
        record = _path(ns, b"content", b"blob", key)
        digest = _text(key)
        contents[digest] = StoredContent(digest, _number(record.get(b"size") if record else None, "a size"), _labels(record))
    snapshots = {}
    for key in _sub_buckets(ns, b"snapshots", SNAPSHOTTER.encode()):
        record = _path(ns, b"snapshots", SNAPSHOTTER.encode(), key)
        if record is None:
            continue
        parent = record.get(b"parent")
        chain = _text(key)
        snapshots[chain] = StoredSnapshot(
            chain, _text(record.get(b"name") or b""), _text(parent) if parent else None, _labels(record)
        )
    others = frozenset(_text(key) for key in _sub_buckets(ns, b"snapshots") if key != SNAPSHOTTER.encode())
    return NamespaceRecords(name, images, contents, snapshots, _holders(ns), others)


def _sub_buckets(bucket: Bucket, *names: bytes) -> list[bytes]:
    found = _path(bucket, *names)
    return list(found.buckets()) if found is not None else []


def _holders(ns: Bucket) -> list[Holder]:
    """Leases (content, snapshots per snapshotter) and containers (snapshotter, snapshotKey)."""
    holders = []
    for key in _sub_buckets(ns, b"leases"):
        lease = _path(ns, b"leases", key)
        snaps: set[tuple[str, str]] = set()
        for snapshotter in _sub_buckets(ns, b"leases", key, b"snapshots"):
            held = _path(lease, b"snapshots", snapshotter)
            snaps.update((_text(snapshotter), _text(snap)) for snap, _ in (held.items() if held is not None else ()))
        content = _path(lease, b"content")
        digests = frozenset(_text(digest) for digest, _ in content.items()) if content is not None else frozenset()
        holders.append(Holder("lease", _text(key), digests, frozenset(snaps), _labels(lease)))
    for key in _sub_buckets(ns, b"containers"):
        container = _path(ns, b"containers", key)
        of = container.get(b"snapshotter") if container is not None else None
        snap_key = container.get(b"snapshotKey") if container is not None else None
        used = frozenset({(_text(of), _text(snap_key))}) if of and snap_key else frozenset()
        holders.append(Holder("container", _text(key), frozenset(), used, _labels(container)))
    return holders


def _snapshot_keys(snaps: Bucket) -> dict[str, str]:
    """chain id (or any snapshot key of the namespace) → the snapshotter's key."""
    found = {}
    for chain in snaps.buckets():
        record = snaps.bucket(chain)
        name = record.get(b"name") if record is not None else None
        if name is not None:
            found[chain.decode()] = name.decode()
    return found


def _put_content(blobs: WriteBucket, record: ContentRecord, changes: MetaChanges, now: bytes) -> None:
    key = record.digest.encode()
    existing = blobs.bucket(key)
    if existing is not None:
        if changes.source is not None and record.touched:
            label_bucket = existing.create_bucket_if_not_exists(b"labels")
            label, repository = changes.source
            old = label_bucket.get(label.encode())
            repositories = set(old.decode().split(",")) if old else set()
            if repository not in repositories:
                label_bucket.put(label.encode(), ",".join(sorted(repositories | {repository})).encode())
                existing.put(b"updatedat", now)
        return
    bucket = blobs.create_bucket(key)
    bucket.put(b"createdat", now)
    bucket.put(b"updatedat", now)
    bucket.put(b"size", varint(record.size))
    labels = dict(record.labels)
    if changes.source is not None:
        labels[changes.source[0]] = changes.source[1]
    _put_labels(bucket, labels)


def _put_labels(bucket: WriteBucket, labels: dict[str, str]) -> None:
    if labels:
        into = bucket.create_bucket(b"labels")
        for name, value in labels.items():
            into.put(name.encode(), value.encode())


def _put_snapshot(snaps: WriteBucket, snap: SnapshotRecord, now: bytes) -> None:
    bucket = snaps.create_bucket(snap.chain_id.encode())
    bucket.put(b"name", snap.key.encode())
    if snap.parent is not None:
        bucket.put(b"parent", snap.parent.encode())
        parent = snaps.bucket(snap.parent.encode())
        if parent is not None:
            parent.create_bucket_if_not_exists(b"children").put(snap.chain_id.encode(), b"")
    bucket.put(b"createdat", now)
    bucket.put(b"updatedat", now)
    _put_labels(bucket, snap.labels)


def _put_image(images: WriteBucket, image: ImageRecord, now: bytes) -> None:
    key = image.name.encode()
    bucket = images.bucket(key)
    if bucket is None:
        bucket = images.create_bucket(key)
        bucket.put(b"createdat", now)
    bucket.put(b"updatedat", now)
    target = bucket.create_bucket_if_not_exists(b"target")
    target.put(b"digest", image.digest.encode())
    target.put(b"mediatype", image.media_type.encode())
    target.put(b"size", varint(image.size))
