"""The explain walk as one self-contained HTML page (no network, no external file).

Readable without JavaScript: the diagram, the walk, each layer's box (ids, size and share,
its changes to the layers below with the lower files they hide), the mount, the containers,
and the merged view as one text listing (a single text node, however many files). Every id
links to its box (#layer-N, #container-ID). With JavaScript, the file trees are built from one
embedded JSON document, lazily: a directory's children are created when it is opened, so a
30,000-file image costs the DOM only what the reader opens.
"""

from __future__ import annotations

import json
from html import escape

from emustore.digest import short_id
from emustore.explain.assets import SCRIPT, STYLE
from emustore.explain.changes import ADDED, UNCHANGED, Change, ImageFiles, LayerChanges
from emustore.explain.diagram import diagram
from emustore.explain.listing import describe, merged_line, size_field
from emustore.explain.mount import LINK_ID_PLACEHOLDER, OverlayMount
from emustore.explain.text import LOWERDIR_NOTE, layer_lines, mount_length_note, mount_parts, render_text, share
from emustore.explain.tree import FileEntry
from emustore.explain.walk import Walk

STATUS_CODES = {"added": "a", "modified": "m", "deleted": "d", "opaque": "o", "unchanged": "u"}
CHANGES_SHOWN = 200  # per layer; the rest is in the trees
HIDES_SHOWN = 50  # per change


def render_html(walk: Walk) -> str:
    title = "emustore explain %s" % walk.query
    body = [
        "<header><h1>%s</h1>" % escape(title),
        '<p class="lead">From the reference to the disk of the data root <code>%s</code>: what each layer adds, '
        "changes and deletes, what a container sees, and how dockerd mounts it.</p>" % escape(str(walk.root)),
        '<nav><a href="#diagram">Diagram</a><a href="#layers">Layers</a><a href="#merged">Merged view</a>'
        '<a href="#mount">Mount</a><a href="#containers">Containers</a>'
        '<input id="search" type="search" placeholder="search a path, e.g. /etc/os-release" disabled '
        'aria-label="search by path"></nav>',
        '<ul id="search-results"></ul></header><main>',
        '<section id="diagram"><h2>The ids, from the reference to the disk</h2>'
        '<p class="note">Each arrow is a file whose content names the next box; click a layer row to jump to its box.</p>',
        diagram(walk),
        "</section>",
        _walk_steps(walk),
        _layers(walk),
        _merged(walk),
        _mount(walk),
        _containers(walk),
        "</main>",
        _data(walk.files),
        "<script>%s</script>" % SCRIPT,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width"><title>%s</title><style>%s</style></head>'
        "<body>\n%s\n</body></html>\n" % (escape(title), STYLE, "\n".join(body))
    )


def _walk_steps(walk: Walk) -> str:
    """Steps 1-3 of the text walk (reference, image id, chain ids), as they read in the terminal."""
    blocks = render_text(walk).strip("\n").split("\n\n")[1:4]
    parts = ['<section id="walk"><h2>Reference, image id, chain ids</h2>']
    for block in blocks:
        heading, _, text = block.partition("\n")
        parts.append("<h3>%s</h3><pre>%s</pre>" % (escape(heading.strip()), escape(text)))
    return "\n".join(parts + ["</section>"])


def _id(label: str, value: str | None, href: str | None = None) -> str:
    shown = escape(value) if value is not None else "<em>missing</em>"
    if href:
        shown = '<a href="%s">%s</a>' % (href, shown)
    return "<dt>%s</dt><dd>%s</dd>" % (escape(label), shown)


def _layers(walk: Walk) -> str:
    total = walk.total_size
    parts = ['<section id="layers"><h2>Layers, base first</h2>',
             '<p class="note">The image is %d bytes in %d layers; %d bytes of them are files that a layer above '
             "overwrote or deleted (wasted).</p>" % (total, len(walk.layers), walk.files.wasted if walk.files else 0)]
    for layer in walk.layers:
        changes = walk.files.layers[layer.index] if walk.files else None
        n = layer.index
        role = " (base)" if n == 0 else " (top)" if n == len(walk.layers) - 1 else ""
        size = layer.size or 0
        lower = " : ".join(
            '<a href="#layer-%d">l/%s</a>' % (e.layer_index, escape(e.link_id)) if e.layer_index is not None
            else "l/" + escape(e.link_id) for e in layer.lower
        )
        parts += [
            '<article class="box" id="layer-%d"><h3>Layer %d%s</h3>' % (n, n, role),
            "<div>%d bytes, %s of the image</div>" % (size, share(size, total)),
            '<div class="bar"><span style="width:%.1f%%"></span></div>' % (100.0 * size / total if total else 0),
            '<dl class="ids">',
            _id("diff id", layer.diff_id),
            _id("chain id", layer.chain_id),
            _id("layerdb dir", walk.rel(layer.layerdb_dir)),
            _id("cache-id (overlay2 dir)", (layer.files.get("cache-id") or None)),
            _id("link (l/ symlink)", layer.link_id),
            "<dt>lower</dt><dd>%s</dd>" % (lower or "none: nothing below"),
            "</dl>",
            "<details><summary>Its files in the store, as they are</summary><pre>%s</pre></details>"
            % escape("\n".join(line[3:] for line in layer_lines(walk, layer)[1:]).strip("\n")),
        ]
        if changes is not None:
            parts.append(_changes(changes))
            parts.append(
                '<details class="layer-tree" data-layer="%d"><summary>All %d entries of this layer, as a tree</summary>'
                '<div class="tree"><p class="note">The tree needs JavaScript; without it, every entry a '
                'container sees is in the merged listing below, with its layer.</p></div></details>'
                % (n, len(changes.changes))
            )
        parts.append("</article>")
    return "\n".join(parts + ["</section>"])


def _changes(changes: LayerChanges, everything: bool = False) -> str:
    """Counts, wasted bytes and a row per change (`everything`: additions too)."""
    counts = changes.counts()
    summary = ", ".join('<span class="st st-%s">%s</span>%d' % (s, s, counts[s]) for s in sorted(counts))
    rows = [c for c in changes.changes if c.status != UNCHANGED and (everything or c.status != ADDED)]
    out = ["<div>%d entries: %s; wasted here: %d bytes of lower files overwritten or deleted</div>"
           % (len(changes.changes), summary or "none", changes.wasted)]
    if changes.skipped or changes.unreadable:
        out.append('<div class="note">%d entries not read (over the budget or too deep); unreadable dirs: %s</div>'
                   % (changes.skipped, escape(", ".join(changes.unreadable)) or "none"))
    if rows:
        out.append('<table class="changes"><tbody>')
        out += [_change_row(change) for change in rows[:CHANGES_SHOWN]]
        out.append("</tbody></table>")
        if len(rows) > CHANGES_SHOWN:
            out.append('<div class="note">…and %d more changes (in the tree)</div>' % (len(rows) - CHANGES_SHOWN))
    return "\n".join(out)


def _change_row(change: Change) -> str:
    what = {"deleted": "whiteout hides", "opaque": "opaque dir hides", "modified": "replaces", "added": ""}[change.status]
    hides = "<br>".join(
        '<a href="#layer-%d">layer %d</a>: <code>%s</code>' % (h.layer, h.layer, escape(describe(h.entry)))
        for h in change.hides[:HIDES_SHOWN]
    ) or ("nothing below" if what else "")
    if len(change.hides) > HIDES_SHOWN:
        hides += "<br>…and %d more" % (len(change.hides) - HIDES_SHOWN)
    return '<tr data-path="%s"><td><span class="st st-%s">%s</span></td><td><code>%s</code></td><td class="hides">%s %s</td></tr>' % (
        escape(change.entry.path), change.status, change.status, escape(describe(change.entry)), what, hides)


def _merged(walk: Walk) -> str:
    """The tree (built by the script) and the whole view as one text node: open without the
    script, closed by it; cheap either way (one node, laid out only when open)."""
    if walk.files is None:
        return ""
    merged = walk.files.merged
    listing = "\n".join(merged_line(entry) for entry in merged)
    return (
        '<section id="merged"><h2>What a container sees: the merged view</h2>'
        '<p class="note">%d entries; each comes from the topmost layer that has it (click the layer to see its box). '
        "Search a path above, or open the directories.</p>"
        '<div id="merged-tree" class="tree"><p class="note">The tree needs JavaScript: every entry is in the listing below.</p></div>'
        '<details id="merged-listing" open><summary>Every entry as text, with the layer it comes from</summary><pre>%s</pre></details>'
        "</section>" % (len(merged), escape(listing))
    )


def _mount(walk: Walk) -> str:
    if walk.mount is None:
        return '<section id="mount"><h2>The mount</h2><p>No top layer link: nothing to mount.</p></section>'
    return (
        '<section id="mount"><h2>How dockerd mounts a container of this image</h2>'
        '<p>A container gets two overlay2 dirs of its own: <code>&lt;ID&gt;-init</code> (the files dockerd adds: '
        "/etc/hosts, /etc/resolv.conf, /.dockerenv…) on the image's top layer, and <code>&lt;ID&gt;</code>, its "
        "writable layer, whose <code>lower</code> file is <code>%s</code>. dockerd mounts overlay on "
        "<code>%s</code> with the options:</p>%s"
        '<p>To look at the image read-only (as root; <code>umount</code> when done):</p><pre id="look-command" class="wrap">%s</pre></section>'
        % (escape(walk.mount.lower), escape(walk.mount.target), _mount_table(walk, walk.mount, 'id="mount-options"'),
           escape(walk.look.command() if walk.look else ""))
    )


def _mount_table(walk: Walk, mount: OverlayMount, attributes: str, init_link: str = LINK_ID_PLACEHOLDER) -> str:
    """The options as dockerd passes them, then one row per option (lowerdir: per layer), then the command."""
    rows = []
    for part in mount_parts(walk, mount, init_link):
        meaning = escape(part.meaning)
        if part.layer is not None:
            meaning = '<a href="#layer-%d">%s</a>' % (part.layer, meaning)
        rows.append("<tr><td><code>%s</code></td><td><code>%s</code></td><td>%s</td></tr>"
                    % (escape(part.option), escape(part.value), meaning))
    return (
        '<pre %s class="wrap">%s</pre><table class="changes mount"><thead><tr><th>option</th><th>value</th>'
        "<th>what it is (%s for lowerdir)</th></tr></thead><tbody>%s</tbody></table>"
        '<p class="note">%s. As a command:</p><pre class="wrap">%s</pre>'
        % (attributes, escape(mount.options), LOWERDIR_NOTE, "".join(rows), escape(mount_length_note(mount)), escape(mount.command()))
    )


def _containers(walk: Walk) -> str:
    parts = ['<section id="containers"><h2>Containers of this image</h2>']
    if not walk.containers:
        parts.append("<p>None in this root.</p>")
    for container in walk.containers:
        parts += [
            '<article class="box" id="container-%s"><h3>Container %s %s</h3><dl class="ids">'
            % (escape(container.id), escape(short_id(container.id)), escape(container.name)),
            _id("id", container.id),
            _id("config", walk.rel(container.config_path)),
            _id("config files", ", ".join(n + ("/" if s < 0 else " (%d bytes)" % s) for n, s in container.config_files)),
            _id("mounts record", walk.rel(container.mount_dir) + "/"),
        ]
        for name, content in container.record.items():
            parts.append(_id("  " + name, content, "#layer-%d" % (len(walk.layers) - 1) if name == "parent" else None))
        for role, layer in (("init layer", container.init), ("read-write layer", container.upper)):
            if layer is None:
                parts.append(_id(role, None))
            else:
                parts.append(_id(role, "%s/  link l/%s  lower %s" % (walk.rel(layer.dir), layer.link_id, layer.lower)))
        parts.append("</dl>")
        for label, changes in zip(("Its init layer (what dockerd adds)", "Its read-write layer (what the container changed)"), container.files):
            parts.append("<h4>%s</h4>%s" % (label, _changes(changes, everything=True)))
        if container.mount is not None:
            init_link = container.init.link_id if container.init and container.init.link_id else LINK_ID_PLACEHOLDER
            parts.append("<h4>Its mount, on <code>%s</code></h4>" % escape(container.mount.target))
            parts.append(_mount_table(walk, container.mount, 'data-container="%s"' % escape(container.id), init_link))
            parts.append('<p>Its files, read-only (as root):</p><pre class="wrap">%s</pre>' % escape(container.look.command() if container.look else ""))
        parts.append("</article>")
    return "\n".join(parts + ["</section>"])


def _data(files: ImageFiles | None) -> str:
    """The trees as JSON for the script: per layer [parent, name, mode, uid, gid, size, status,
    hidden_by, target, note] in parent-first order; merged: [parent, layer, index in that layer]."""
    layers: list[list[list[object]]] = []
    positions: list[dict[str, int]] = []
    for layer in files.layers if files else []:
        where: dict[str, int] = {}
        rows = []
        for i, change in enumerate(layer.changes):
            where[change.entry.path] = i
            rows.append(_row(change, where))
        layers.append(rows)
        positions.append(where)
    merged: list[list[int]] = []
    merged_where: dict[str, int] = {}
    for i, entry in enumerate(files.merged if files else []):
        merged_where[entry.entry.path] = i
        parent = merged_where.get(entry.entry.path.rpartition("/")[0], -1)
        merged.append([parent, entry.layer, positions[entry.layer][entry.entry.path]])
    text = json.dumps({"layers": layers, "merged": merged}, separators=(",", ":"))
    return '<script type="application/json" id="explain-data">%s</script>' % text.replace("</", "<\\/")


def _row(change: Change, where: dict[str, int]) -> list[object]:
    entry = change.entry
    parent_path, _, name = entry.path.rpartition("/")
    parent = where.get(parent_path, -1)
    return [parent, name if parent >= 0 or not parent_path else entry.path[1:], entry.mode, entry.uid, entry.gid,
            entry.size, STATUS_CODES[change.status], -1 if change.hidden_by is None else change.hidden_by,
            entry.target or "", _note(entry)]


def _note(entry: FileEntry) -> str:
    if entry.whiteout:
        return "whiteout"
    if entry.opaque:
        return "opaque: %s=y" % entry.opaque
    if entry.kind in ("char", "block"):
        return "device " + size_field(entry)
    return ""
