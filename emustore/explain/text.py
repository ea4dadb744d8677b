"""The explain walk as plain text: numbered steps, each with the real paths and file contents.

Stable enough to diff: entries sorted by path, no clock time, nothing but what the root holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from emustore.digest import short_id
from emustore.errors import UsageError
from emustore.explain.changes import ADDED, UNCHANGED, Change, LayerChanges
from emustore.explain.listing import change_line, hidden_line, merged_line
from emustore.explain.mount import LINK_ID_PLACEHOLDER, OverlayMount, page_size
from emustore.explain.walk import LayerStep, Walk

MISSING = "(missing)"
LOWERDIR_NOTE = "read-only layers, topmost first"


def render_text(walk: Walk, files: bool = False) -> str:
    """The walk; with `files`, every entry of every layer too."""
    return "\n".join(_lines(walk, files)) + "\n"


def render_merged(walk: Walk, path: str = "/") -> str:
    """The merged view (at `path` and below), one entry a line with the layer it comes from."""
    entries = walk.files.merged_under(path) if walk.files is not None else []
    if not entries and path.strip("/"):
        raise UsageError("%s: not in the merged view of %s" % (path, walk.query))
    return "".join(merged_line(entry) + "\n" for entry in entries)


def share(part: int, whole: int) -> str:
    return "%.1f%%" % (100.0 * part / whole) if whole else "-"


def _shown(value: str | None) -> str:
    return MISSING if value is None else repr(value) if value != value.strip() else value


def _lines(walk: Walk, files: bool) -> list[str]:
    out = ["Data root: %s" % walk.root, "Paths below are relative to it.", ""]
    if walk.engine_id:
        out[1:1] = ["engine-id %s: written by Docker 26 and 28 at start (20.10 has none); the image store is the same" % walk.engine_id]
    out += _reference(walk)
    out += _image(walk)
    out += _chains(walk)
    for layer in walk.layers:
        out += layer_lines(walk, layer)
        if walk.files is not None:
            out += _layer_files(walk, walk.files.layers[layer.index], files)
    out += _mount(walk)
    out += _merged(walk)
    out += _containers(walk)
    return out


def _layer_files(walk: Walk, changes: LayerChanges, full: bool) -> list[str]:
    """What the layer does to the layers below: counts, size, wasted bytes, and each change."""
    layer = walk.layers[changes.index]
    size = "%d bytes" % layer.size if layer.size is not None else "size unknown"
    out = counts_lines(changes) + [
        "             %s (layerdb size), %s of the image" % (size, share(layer.size or 0, walk.total_size)),
        "   wasted    %d bytes of lower files overwritten or deleted by this layer" % changes.wasted,
    ]
    shown = [c for c in changes.changes if full or c.status not in (ADDED, UNCHANGED)]
    if shown:
        out.append("   every entry:" if full else "   changes to the layers below (additions: --files):")
    return out + change_lines(shown) + [""]


def counts_lines(changes: LayerChanges, label: str = "files") -> list[str]:
    counts = changes.counts()
    listed = ", ".join("%d %s" % (counts[s], s) for s in sorted(counts))
    out = ["   %-9s %d entries%s" % (label, len(changes.changes), ": " + listed if listed else "")]
    if changes.skipped or changes.unreadable:
        out.append("   not read  %d entries (over the listing budget or too deep); unreadable dirs: %s"
                   % (changes.skipped, ", ".join(changes.unreadable) or "none"))
    return out


def change_lines(shown: list[Change]) -> list[str]:
    out = []
    for change in shown:
        out.append("     " + change_line(change))
        out += ["       hides " + hidden_line(hidden) for hidden in change.hides]
    return out


def _reference(walk: Walk) -> list[str]:
    out = ["1. Reference -> image id"]
    if walk.reference_key is None:
        out.append("   %s was given as an image id; no repositories.json lookup needed." % walk.query)
    else:
        out += [
            "   %s is looked up in image/overlay2/repositories.json," % walk.query,
            '   under the familiar repository name, then the tag or digest key:',
            '     {"Repositories": {"%s": {"%s": "%s"}}}' % (walk.repository, walk.reference_key, walk.image_id),
        ]
    if walk.other_keys:
        label = "References to this image" if walk.reference_key is None else "Other references to the same image"
        out.append("   %s: %s" % (label, ", ".join(walk.other_keys)))
    return out + [""]


def _image(walk: Walk) -> list[str]:
    verdict = "equals the image id" if walk.config_sha256 == walk.image_id else "DOES NOT equal the image id"
    out = [
        "2. Image id = sha256 of the image config, stored byte for byte",
        "   %s  (%d bytes)" % (walk.rel(walk.config_path), walk.config_size),
        "   sha256(file) = %s  (%s)" % (walk.config_sha256, verdict),
        "   created: %s" % (walk.created or "N/A"),
        "   Its rootfs.diff_ids, base layer first (sha256 of each uncompressed layer tar):",
    ]
    out += ["     diff[%d] = %s" % (i, diff_id) for i, diff_id in enumerate(walk.diff_ids)]
    if not walk.diff_ids:
        out.append("     (none: an image without layers)")
    return out + [""]


def _chains(walk: Walk) -> list[str]:
    out = [
        "3. Chain ids name a layer together with everything below it",
        "   chain[0] = diff[0]",
        '   chain[n] = "sha256:" + hex(sha256(chain[n-1] + " " + diff[n]))',
    ]
    for layer in walk.layers:
        if layer.formula is None:
            out.append("   chain[0] = %s" % layer.chain_id)
        else:
            out.append('   chain[%d] = sha256("%s")' % (layer.index, layer.formula))
            out.append("            = %s" % layer.chain_id)
    return out + [""]


def layer_lines(walk: Walk, layer: LayerStep) -> list[str]:
    n = layer.index
    out = [
        "%d. Layer %d%s" % (4 + n, n, " (base)" if n == 0 else " (top)" if n == len(walk.layers) - 1 else ""),
        "   layerdb entry %s/  (named by chain[%d])" % (walk.rel(layer.layerdb_dir), n),
    ]
    for name, content in layer.files.items():
        out.append("     %-9s %s" % (name, _file_note(name, content, n)))
    out.append("     %-9s %s" % ("tar-split.json.gz", MISSING if layer.tar_split_bytes is None else "%d bytes (rebuilds the original tar for save/push)" % layer.tar_split_bytes))
    if layer.overlay_dir is None:
        return out + ["   overlay2 dir: unknown (cache-id missing)", ""]
    out += [
        "   overlay2 dir %s/  (the layer's files are in diff/)" % walk.rel(layer.overlay_dir),
        "     link      %s" % _shown(layer.link_id),
    ]
    if layer.link_id:
        out.append("     %s -> %s" % (walk.rel(walk.root / "overlay2" / "l" / layer.link_id), layer.link_target or MISSING))
    if layer.lower:
        out.append("     lower     %s" % ":".join("l/" + e.link_id for e in layer.lower))
        out.append("     the lower chain, nearest parent first:")
        for entry in layer.lower:
            owner = "layer %d" % entry.layer_index if entry.layer_index is not None else "not a layer of this image"
            out.append("       l/%s -> %s  (%s)" % (entry.link_id, entry.target or MISSING, owner))
    else:
        out.append("     lower     (absent: nothing below a base layer)" if n == 0 else "     lower     MISSING")
    if layer.extras:
        out.append("     also      %s" % ", ".join(layer.extras))
    for blob in layer.blobs:
        out.append("   pulled from blob %s (distribution/diffid-by-digest maps it to diff[%d])" % (blob, n))
    return out + [""]


def _file_note(name: str, content: str | None, n: int) -> str:
    """A layerdb file's content with what it means in the walk."""
    if name == "parent" and content is None:
        return "(absent: a base layer has no parent)" if n == 0 else "MISSING: the layer would load as a base layer"
    meaning = {"diff": "= diff[%d]" % n, "parent": "= chain[%d]" % (n - 1), "cache-id": "-> names the overlay2 dir"}
    return "%s  %s" % (_shown(content), meaning.get(name, "(bytes of the extracted diff/)"))


def _mount(walk: Walk) -> list[str]:
    if walk.mount is None:
        return []
    return [
        "%d. What a container mounts" % (4 + len(walk.layers)),
        "   A container gets two overlay2 dirs of its own: <ID>-init (the files dockerd adds: /etc/hosts,",
        "   /etc/resolv.conf, /.dockerenv…) on the image's top layer, and <ID>, its writable layer, whose",
        "   lower file lists the init layer's link, then the image's top link and the top layer's lower:",
        "     %s" % walk.mount.lower,
    ] + mount_lines(walk, walk.mount) + [
        "   To look at the image read-only (as root; umount when done):",
        "     %s" % (walk.look.command() if walk.look else MISSING),
        "",
    ]


@dataclass(frozen=True)
class MountPart:
    """One option of the mount (or one lowerdir element) and what it means."""

    option: str
    value: str
    meaning: str
    layer: int | None = None  # the image layer a lowerdir element is


def mount_parts(walk: Walk, mount: OverlayMount, init_link: str = LINK_ID_PLACEHOLDER) -> list[MountPart]:
    """The options dockerd passes, one by one, lowerdir element by element, with their meaning."""
    layers = {layer.link_id: layer.index for layer in walk.layers if layer.link_id}
    top = len(walk.layers) - 1
    parts = []
    if mount.index_off:
        parts.append(MountPart("index=off", "", "this kernel's overlay module has an index parameter: dockerd turns it off"))
    if mount.userxattr:
        parts.append(MountPart("userxattr", "", "a rootless daemon: overlayfs keeps its marks in user.overlay.* xattrs"))
    for element in mount.lowerdirs():
        name = element.rsplit("/", 1)[-1]
        index = layers.get(name)
        if index is not None:
            meaning = "layer %d%s" % (index, ", the top" if index == top else "")
        elif name == init_link:
            meaning = "the container's init layer"
        else:
            meaning = "its own diff (committed, so mounted read-only)" if element.endswith("/diff") else "not a layer of this image"
        parts.append(MountPart("lowerdir", element, meaning, index))
    if not mount.readonly:
        parts.append(MountPart("upperdir", mount.dir_id + "/diff", "where the container's writes go"))
        parts.append(MountPart("workdir", mount.dir_id + "/work", "overlayfs's scratch dir, on the same file system"))
    return parts


def mount_length_note(mount: OverlayMount) -> str:
    if mount.relative:
        return ("%d bytes with absolute paths is over a page (%d) minus one: dockerd uses paths relative to overlay2/ "
                "and mounts from a child that chdirs there" % (mount.absolute_length, page_size()))
    return "%d bytes, under a page minus one: absolute paths, no chdir" % mount.absolute_length


def mount_lines(walk: Walk, mount: OverlayMount, init_link: str = LINK_ID_PLACEHOLDER) -> list[str]:
    """The mount dockerd performs and what each option means."""
    out = [
        "   dockerd mounts %s (type overlay) with the options:" % mount.target,
        "     %s" % mount.options,
    ]
    for part in mount_parts(walk, mount, init_link):
        if part.option != "lowerdir":
            out.append("     %-11s %s%s" % (part.option, part.value + ": " if part.value else "", part.meaning))
            continue
        if not out[-1].startswith("       "):
            out.append("     lowerdir    %s:" % LOWERDIR_NOTE)
        out.append("       %s  (%s)" % (part.value, part.meaning))
    out.append("   %s. As a command:" % mount_length_note(mount))
    out.append("     %s" % mount.command())
    return out


def _merged(walk: Walk) -> list[str]:
    if walk.files is None:
        return []
    merged = walk.files.merged
    total = sum(m.entry.counted_size for m in merged)
    return [
        "%d. What a container sees: the merged view" % (5 + len(walk.layers)),
        "   %d entries, %d bytes in regular files; %d bytes of the layers are hidden (wasted)."
        % (len(merged), total, walk.files.wasted),
        "   `emustore explain %s --merged [PATH]` lists them with the layer each comes from." % walk.query,
    ]


def _containers(walk: Walk) -> list[str]:
    """Each container of the image: config, layerdb mount, init and writable overlay2 dirs."""
    out = []
    for container in walk.containers:
        out += [
            "",
            "Container %s %s" % (short_id(container.id), container.name),
            "   config    %s" % walk.rel(container.config_path),
            "   files     %s" % ", ".join(name + ("/" if size < 0 else " (%d bytes)" % size) for name, size in container.config_files),
            "   mount     %s/  (layerdb's record of the container's layers)" % walk.rel(container.mount_dir),
        ]
        meaning = {"mount-id": "-> the writable layer's overlay2 dir", "init-id": "-> the init layer's overlay2 dir",
                   "parent": "= the image's top chain id"}
        for name, content in container.record.items():
            out.append("     %-9s %s  %s" % (name, _shown(content), meaning[name]))
        for role, layer in (("init", container.init), ("layer", container.upper)):
            if layer is None:
                out.append("   %-9s %s" % (role, MISSING))
            else:
                out.append("   %-9s %s/  link l/%s%s" % (role, walk.rel(layer.dir), _shown(layer.link_id), "  committed" if layer.committed else ""))
                out.append("             lower %s" % _shown(layer.lower))
        for label, changes in zip(("init diff", "rw diff"), container.files):
            out += counts_lines(changes, label)
            out += change_lines([c for c in changes.changes if c.status != UNCHANGED])
        out += container.notes
        if container.mount is not None:
            init_link = container.init.link_id if container.init is not None else None
            out += mount_lines(walk, container.mount, init_link or LINK_ID_PLACEHOLDER)
            out += ["   To look at the container's files read-only (as root):", "     %s" % (container.look.command() if container.look else MISSING)]
    return out
