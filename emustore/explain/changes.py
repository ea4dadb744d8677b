"""What each layer does to the layers below it, and the merged view a container sees.

Layers are stacked base first, as overlayfs stacks them: an entry replaces the lower entry of the
same path (a non-directory hides the lower one's whole subtree), a whiteout (char device 0/0)
deletes the lower entry and its subtree, an opaque directory hides everything below it in lower
layers. Works on `FileEntry` lists only, whichever store the diff dirs came from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from emustore.explain.tree import FileEntry, LayerFiles

ADDED, MODIFIED, DELETED, OPAQUE, UNCHANGED = "added", "modified", "deleted", "opaque", "unchanged"
STATUSES = (ADDED, MODIFIED, DELETED, OPAQUE, UNCHANGED)


@dataclass(frozen=True, slots=True)
class Hidden:
    """A lower layer's entry that an entry above hides."""

    layer: int
    entry: FileEntry


@dataclass(slots=True)
class Change:
    """One entry of a layer, compared with the layers below it."""

    entry: FileEntry
    status: str  # one of STATUSES; UNCHANGED: a directory present below with the same mode and owner
    hides: list[Hidden]  # lower entries it hides (a deleted, replaced or opaque-hidden subtree)
    hidden_by: int | None = None  # the layer above that hides this entry, if any


@dataclass
class LayerChanges:
    index: int
    changes: list[Change]
    skipped: int = 0
    unreadable: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Bytes of the regular files in this layer."""
        return sum(change.entry.counted_size for change in self.changes)

    @property
    def wasted(self) -> int:
        """Bytes of lower regular files this layer makes invisible (overwritten or deleted)."""
        return sum(hidden.entry.counted_size for change in self.changes for hidden in change.hides)

    def counts(self) -> Counter[str]:
        return Counter(change.status for change in self.changes)


@dataclass(frozen=True, slots=True)
class MergedEntry:
    entry: FileEntry
    layer: int  # the topmost layer that has this path (whose metadata the container sees)


@dataclass
class ImageFiles:
    layers: list[LayerChanges]
    merged: list[MergedEntry]  # sorted by path, parents first

    @property
    def wasted(self) -> int:
        return sum(layer.wasted for layer in self.layers)

    def merged_under(self, path: str) -> list[MergedEntry]:
        """The merged entries at `path` and below it ("/" or "": all)."""
        base = "/" + path.strip("/") if path.strip("/") else ""
        if not base:
            return list(self.merged)
        return [m for m in self.merged if m.entry.path == base or m.entry.path.startswith(base + "/")]


class _Node:
    __slots__ = ("change", "layer", "children")

    def __init__(self, change: Change | None, layer: int) -> None:
        self.change = change
        self.layer = layer
        self.children: dict[str, _Node] = {}

    def subtree(self) -> list[_Node]:
        """This node and every node below it, parents first."""
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children[name] for name in sorted(node.children, reverse=True))
        return out


def analyse(layers: list[LayerFiles]) -> ImageFiles:
    """Each layer's changes (base first) and the merged view of all of them."""
    root = _Node(None, -1)
    nodes: dict[str, _Node] = {"": root}
    result = []
    for index, files in enumerate(layers):
        changes = [_apply(index, entry, nodes) for entry in files.entries]
        result.append(LayerChanges(index, changes, files.skipped, list(files.unreadable)))
    merged = [MergedEntry(node.change.entry, node.layer) for node in root.subtree()[1:] if node.change]
    return ImageFiles(result, merged)


def _apply(index: int, entry: FileEntry, nodes: dict[str, _Node]) -> Change:
    parent_path, _, name = entry.path.rpartition("/")
    parent = nodes.get(parent_path)
    old = parent.children.get(name) if parent is not None else None
    change = Change(entry, ADDED, [])
    if old is not None and old.change is not None:
        lower = old.change.entry
        if entry.whiteout or not (entry.is_dir and lower.is_dir):
            change.status = DELETED if entry.whiteout else MODIFIED
            change.hides = _hide(old, index, nodes, keep_top=False)
        elif entry.opaque:
            change.status = OPAQUE
            change.hides = _hide(old, index, nodes, keep_top=True)
        elif (entry.mode, entry.uid, entry.gid) != (lower.mode, lower.uid, lower.gid):
            change.status = MODIFIED
        else:
            change.status = UNCHANGED
    elif entry.whiteout:
        change.status = DELETED
    if parent is None or entry.whiteout:
        return change
    node = parent.children.get(name)
    if node is None:
        node = parent.children[name] = _Node(change, index)
        nodes[entry.path] = node
    else:
        node.change, node.layer = change, index
    return change


def _hide(node: _Node, index: int, nodes: dict[str, _Node], keep_top: bool) -> list[Hidden]:
    """Hide `node`'s subtree (below it only, with `keep_top`) from the merged view; what was hidden."""
    hidden = []
    for below in node.subtree()[1 if keep_top else 0:]:
        if below.change is None:
            continue
        hidden.append(Hidden(below.layer, below.change.entry))
        below.change.hidden_by = index
        nodes.pop(below.change.entry.path, None)
    if keep_top:
        node.children.clear()
    else:
        parent_path, _, name = node.change.entry.path.rpartition("/") if node.change else ("", "", "")
        parent = nodes.get(parent_path)
        if parent is not None:
            parent.children.pop(name, None)
    return hidden
