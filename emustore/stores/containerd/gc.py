"""containerd's garbage collection, over meta.db's records: what `ctr images rm --sync` collects.

Per namespace, the roots are its images (their targets and gc.ref labels), its containers' and
unexpired leases' resources, and content or snapshots labelled `containerd.io/gc.root`. From
them, references are followed: `containerd.io/gc.ref.content*` labels to content, and
`containerd.io/gc.ref.snapshot.overlayfs*` labels and parents to overlayfs snapshots. Content
and overlayfs snapshot records nothing reaches are garbage. Snapshots of other snapshotters are
not ours to judge: they are never collected (nor what their labels reach, conservatively kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from emustore.stores.containerd.layout import SNAPSHOTTER
from emustore.stores.containerd.metadata import NamespaceRecords

GC_ROOT = "containerd.io/gc.root"
GC_EXPIRE = "containerd.io/gc.expire"
REF_CONTENT = "containerd.io/gc.ref.content"
REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."


@dataclass
class Garbage:
    """Per namespace: content digests and overlayfs snapshot names (chain ids) nothing references."""

    contents: dict[str, set[str]] = field(default_factory=dict)
    snapshots: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class _Marks:
    contents: set[str] = field(default_factory=set)
    snapshots: set[str] = field(default_factory=set)
    pending: list[tuple[str, str]] = field(default_factory=list)  # ("content" | "snapshot", name)

    def labels(self, labels: dict[str, str]) -> None:
        for key, value in labels.items():
            if key == REF_CONTENT or key.startswith(REF_CONTENT + ".") or key.startswith(REF_CONTENT + "/"):
                self.pending.append(("content", value))
            elif key.startswith(REF_SNAPSHOT) and key[len(REF_SNAPSHOT):].split("/")[0] == SNAPSHOTTER:
                self.pending.append(("snapshot", value))


def collect(namespaces: dict[str, NamespaceRecords], now: datetime | None = None) -> Garbage:
    """What the collector would remove from `namespaces` (each already without the removed images)."""
    moment = now or datetime.now(timezone.utc)
    garbage = Garbage()
    for name, records in namespaces.items():
        marks = _Marks()
        for image in records.images.values():
            marks.pending.append(("content", image.digest))
            marks.labels(image.labels)
        for holder in records.holders:
            if holder.kind == "lease" and _expired(holder.labels.get(GC_EXPIRE), moment):
                continue
            marks.pending += [("content", digest) for digest in holder.contents]
            marks.pending += [("snapshot", key) for of, key in holder.snapshots if of == SNAPSHOTTER]
            marks.labels(holder.labels)
        marks.pending += [("content", d) for d, record in records.contents.items() if GC_ROOT in record.labels]
        marks.pending += [("snapshot", s) for s, record in records.snapshots.items() if GC_ROOT in record.labels]
        while marks.pending:
            kind, key = marks.pending.pop()
            if kind == "content" and key not in marks.contents and key in records.contents:
                marks.contents.add(key)
                marks.labels(records.contents[key].labels)
            elif kind == "snapshot" and key not in marks.snapshots and key in records.snapshots:
                marks.snapshots.add(key)
                snapshot = records.snapshots[key]
                marks.labels(snapshot.labels)
                if snapshot.parent is not None:
                    marks.pending.append(("snapshot", snapshot.parent))
        contents = set(records.contents) - marks.contents
        snapshots = set(records.snapshots) - marks.snapshots
        if contents:
            garbage.contents[name] = contents
        if snapshots:
            garbage.snapshots[name] = snapshots
    return garbage


def _expired(text: str | None, now: datetime) -> bool:
    """A lease's gc.expire (RFC 3339) before `now`; unreadable: not expired (kept)."""
    if not text:
        return False
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.tzinfo is not None and when < now
