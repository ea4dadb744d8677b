"""The containerd explain walk as text (stable, diffable) and as one self-contained HTML page (the
same steps, each layer's changes and the merged view; no script, no external file)."""

from __future__ import annotations

from html import escape

from emustore.errors import UsageError
from emustore.explain.changes import ADDED, UNCHANGED
from emustore.explain.containerd import BlobStep, ContainerdWalk
from emustore.explain.listing import merged_line
from emustore.explain.text import change_lines, counts_lines
from emustore.stores.containerd.layout import OVERLAYFS, SNAPSHOTTER

MISSING = "(missing)"
SNAPSHOTS = OVERLAYFS + "/snapshots"


def render_text(walk: ContainerdWalk, files: bool = False) -> str:
    """The walk; with `files`, every entry of every layer too."""
    return "\n".join(line for section in _sections(walk, files) for line in section[1]) + "\n"


def render_merged(walk: ContainerdWalk, path: str = "/") -> str:
    entries = walk.files.merged_under(path) if walk.files is not None else []
    if not entries and path.strip("/"):
        raise UsageError("%s: not in the merged view of %s" % (path, walk.query))
    return "".join(merged_line(entry) + "\n" for entry in entries)


def render_html(walk: ContainerdWalk) -> str:
    title = "emustore explain %s (containerd, namespace %s)" % (walk.query, walk.namespace)
    body = ["<h1>%s</h1>" % escape(title)]
    for heading, lines in _sections(walk, False):
        body.append("<section><h2>%s</h2><pre>%s</pre></section>" % (escape(heading), escape("\n".join(lines[1:]))))
    merged = walk.files.merged if walk.files is not None else []
    body.append("<section><h2>Merged view</h2><pre>%s</pre></section>" % escape("".join(merged_line(m) + "\n" for m in merged)))
    style = "body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow-x:auto}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head>'
        "<body>\n%s\n</body></html>\n" % (escape(title), style, "\n".join(body))
    )


def _blob(walk: ContainerdWalk, blob: BlobStep | None) -> list[str]:
    if blob is None:
        return ["   " + MISSING]
    where = walk.rel(blob.path) if blob.path is not None else "(not a sha256 digest: %r)" % blob.digest[:100]
    out = ["   %s  (%d bytes, %s)" % (where, blob.size, "present, recorded" if blob.present else "MISSING")]
    out.append("   meta.db v1/%s/content/blob/%s/labels:" % (walk.namespace, blob.digest))
    out += ["     %s = %s" % item for item in blob.labels.items()] or ["     (none)"]
    return out


def _sections(walk: ContainerdWalk, files: bool) -> list[tuple[str, list[str]]]:
    image = walk.view.image
    sections: list[tuple[str, list[str]]] = []

    def section(heading: str, lines: list[str]) -> None:
        sections.append((heading, ["%d. %s" % (len(sections), heading)] + lines + [""]))

    sections.append(("Root", ["containerd root: %s (namespace %s)" % (walk.root, walk.namespace), "Paths below are relative to it.", ""]))
    section("Image record -> target", [
        "   meta.db v1/%s/images/%s/target:" % (walk.namespace, image.name),
        "     digest    %s" % image.digest,
        "     mediatype %s" % image.media_type,
        "     size      %d" % image.size,
        "   created %s, updated %s; platforms %s" % (image.created or "-", image.updated or "-", ", ".join(walk.view.platforms) or "-"),
    ] + ["   label %s = %s" % item for item in sorted(image.labels.items())])
    target = _blob(walk, walk.target)
    if walk.manifest is not walk.target:
        target.append("   an index: containerd follows the manifest of this machine's platform")
    section("Target blob (content store)", target)
    if walk.manifest is not walk.target:
        section("Platform manifest", _blob(walk, walk.manifest))
    config = _blob(walk, walk.config)
    config.append("   its rootfs.diff_ids, base first:")
    config += ["     diff[%d] = %s" % (layer.index, layer.diff_id or MISSING) for layer in walk.layers]
    config.append("   gc.ref.snapshot.%s names the top chain id: what keeps the snapshots from the collector" % SNAPSHOTTER)
    section("Config blob", config)
    section("Chain ids name a snapshot with everything below it", [
        "   chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + \" \" + diff[n])",
    ] + ["   chain[%d] = %s" % (layer.index, layer.chain_id or MISSING) for layer in walk.layers])
    for layer in walk.layers:
        n = layer.index
        role = " (base)" if n == 0 else " (top)" if n == len(walk.layers) - 1 else ""
        lines = ["   compressed blob:"] + _blob(walk, layer.blob)
        lines += [
            "   meta.db v1/%s/snapshots/%s/%s/name = %s" % (walk.namespace, SNAPSHOTTER, layer.chain_id, layer.key or MISSING),
            "   metadata.db v1/snapshots/%s/id = %s" % (layer.key or "?", layer.snapshot_id if layer.snapshot_id is not None else MISSING),
            "   files in %s" % (walk.rel(layer.fs) + "/" if layer.fs is not None else MISSING),
        ]
        if walk.files is not None:
            changes = walk.files.layers[n]
            lines += counts_lines(changes)
            lines.append("   wasted    %d bytes of lower files overwritten or deleted by this layer" % changes.wasted)
            shown = [c for c in changes.changes if files or c.status not in (ADDED, UNCHANGED)]
            if shown:
                lines.append("   every entry:" if files else "   changes to the layers below (additions: --files):")
            lines += change_lines(shown)
        section("Layer %d%s" % (n, role), lines)
    if walk.look is not None:
        lowers = [walk.rel(layer.fs) for layer in reversed(walk.layers) if layer.fs is not None]
        section("What a container mounts", [
            "   containerd prepares an active snapshot <new> on the top one and mounts overlay with",
            "     lowerdir=%s" % ":".join(lowers),
            "     upperdir=%s, workdir=%s" % (walk.rel(walk.root / SNAPSHOTS / "<new>" / "fs"), walk.rel(walk.root / SNAPSHOTS / "<new>" / "work")),
            "   To look at the image read-only (as root; umount when done):",
            "     %s" % walk.look.command(),
        ])
    if walk.files is not None:
        merged = walk.files.merged
        section("What a container sees: the merged view", [
            "   %d entries, %d bytes in regular files; %d bytes of the layers are hidden (wasted)."
            % (len(merged), sum(m.entry.counted_size for m in merged), walk.files.wasted),
            "   `emustore explain --store containerd %s --merged [PATH]` lists them with their layers." % walk.query,
        ])
    return sections
