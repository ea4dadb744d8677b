"""The explain walk as plain text: numbered steps, each with the real paths and file contents."""

from __future__ import annotations

from emustore.digest import short_id
from emustore.explain.walk import LayerStep, Walk

MISSING = "(missing)"


def render_text(walk: Walk) -> str:
    return "\n".join(_lines(walk)) + "\n"


def _shown(value: str | None) -> str:
    return MISSING if value is None else repr(value) if value != value.strip() else value


def _lines(walk: Walk) -> list[str]:
    out = ["Data root: %s" % walk.root, "Paths below are relative to it.", ""]
    out += _reference(walk)
    out += _image(walk)
    out += _chains(walk)
    for layer in walk.layers:
        out += _layer(walk, layer)
    out += _mount(walk)
    out += _containers(walk)
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


def _layer(walk: Walk, layer: LayerStep) -> list[str]:
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
    top = walk.layers[-1] if walk.layers else None
    if top is None or top.link_id is None:
        return []
    lowers = ["l/" + top.link_id] + ["l/" + e.link_id for e in top.lower]
    return [
        "%d. What a container mounts" % (4 + len(walk.layers)),
        "   A container's layer lists the image's top link and its lower chain (overlay2/ is the cwd):",
        "   lowerdir=%s" % ":".join(lowers),
    ]


def _containers(walk: Walk) -> list[str]:
    """Each container of the image: config, layerdb mount, init and writable overlay2 dirs."""
    out = []
    for container in walk.containers:
        out += [
            "",
            "Container %s %s" % (short_id(container.id), container.name),
            "   config    %s" % walk.rel(container.config_path),
            "   mount     %s/  parent %s" % (walk.rel(container.mount_dir), _shown(container.parent)),
        ]
        for role, layer in (("init", container.init), ("layer", container.upper)):
            if layer is None:
                out.append("   %-9s %s" % (role, MISSING))
            else:
                out.append("   %-9s %s/  link l/%s" % (role, walk.rel(layer.dir), _shown(layer.link_id)))
                out.append("             lower %s" % _shown(layer.lower))
    return out
