"""The ids of an image as an inline SVG diagram: one row of boxes per layer, linked by the files
that connect them; each layer row links to the layer's box on the page (#layer-N)."""

from __future__ import annotations

from html import escape

from emustore.digest import short_id
from emustore.explain.walk import LayerStep, Walk

BOX_W, BOX_H = 220, 74
GAP_X, GAP_Y = 70, 44
MARGIN = 24
HEADER_H = 110
COLUMNS = ("diff id", "chain id", "layerdb dir", "overlay2 dir", "l/ symlink")
COLORS = ("#e8f1fb", "#fdf1dc", "#e9f7ec", "#f3e9fb", "#fbe9ec")


def diagram(walk: Walk) -> str:
    """Boxes per layer (top layer first) in five columns, linked by the files that connect them."""
    count = len(walk.layers)
    width = 2 * MARGIN + len(COLUMNS) * BOX_W + (len(COLUMNS) - 1) * GAP_X
    height = MARGIN + HEADER_H + 28 + max(count, 1) * (BOX_H + GAP_Y) - GAP_Y + MARGIN
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="layer diagram">'
        % (width, height, width, height),
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#56627a"/></marker></defs>',
    ]
    parts += _header(walk)
    top = MARGIN + HEADER_H
    for col, name in enumerate(COLUMNS):
        parts.append('<text class="col" x="%d" y="%d">%s</text>' % (_x(col), top + 16, escape(name)))
    for layer in walk.layers:
        parts += _layer_row(walk, layer, _row_y(walk, layer.index))
    parts.append("</svg>")
    return "\n".join(parts)


def _x(col: int) -> int:
    return MARGIN + col * (BOX_W + GAP_X)


def _row_y(walk: Walk, index: int) -> int:
    return MARGIN + HEADER_H + 28 + (len(walk.layers) - 1 - index) * (BOX_H + GAP_Y)


def _short(digest: str | None) -> str:
    if digest is None:
        return "MISSING"
    return short_id(digest)


def _box(x: int, y: int, kind: str, lines: list[str], color: str, full: str, broken: bool = False) -> list[str]:
    out = [
        "<g><title>%s</title>" % escape(full),
        '<rect class="%s" x="%d" y="%d" width="%d" height="%d" rx="8" fill="%s"/>'
        % ("box broken" if broken else "box", x, y, BOX_W, BOX_H, color),
        '<text class="kind" x="%d" y="%d">%s</text>' % (x + 10, y + 20, escape(kind)),
    ]
    for i, line in enumerate(lines[:3]):
        out.append('<text x="%d" y="%d">%s</text>' % (x + 10, y + 38 + 15 * i, escape(line)))
    return out + ["</g>"]


def _edge(x1: float, y1: float, x2: float, y2: float, label: str, css: str = "") -> list[str]:
    cls = ' class="%s"' % css if css else ""
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    return [
        '<line%s x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" marker-end="url(#arrow)"/>' % (cls, x1, y1, x2, y2),
        '<text class="edge" x="%.0f" y="%.0f" text-anchor="middle">%s</text>' % (mx, my - 5, escape(label)),
    ]


def _header(walk: Walk) -> list[str]:
    y = MARGIN
    ref_lines = ["repositories.json", walk.reference_key or "(given as an image id)"]
    out = _box(_x(0), y, "reference", [_fit(line) for line in ref_lines], "#eef0f4", walk.reference_key or walk.query)
    config = ["imagedb/content/sha256/", _short(walk.image_id), "%d bytes, sha256 = id" % walk.config_size]
    out += _box(_x(1), y, "image config = image id", config, "#eef0f4", walk.image_id, walk.config_sha256 != walk.image_id)
    out += _edge(_x(0) + BOX_W, y + BOX_H / 2, _x(1), y + BOX_H / 2, "image id")
    if walk.layers:
        first = _row_y(walk, len(walk.layers) - 1)
        out += _edge(_x(1) + 30, y + BOX_H, _x(0) + BOX_W / 2, first, "rootfs.diff_ids")
    return out


def _fit(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _layer_row(walk: Walk, layer: LayerStep, y: int) -> list[str]:
    """The row's boxes inside a link to the layer's box on the page."""
    return ['<a href="#layer-%d">' % layer.index] + _layer_boxes(walk, layer, y) + ["</a>"]


def _layer_boxes(walk: Walk, layer: LayerStep, y: int) -> list[str]:
    n = layer.index
    mid = y + BOX_H / 2
    files = layer.files
    out = _box(_x(0), y, "diff[%d]" % n, [_short(layer.diff_id), "sha256 of the layer tar"], COLORS[0], layer.diff_id)
    chain_note = "= diff[0]" if layer.formula is None else "sha256(chain[%d] diff[%d])" % (n - 1, n)
    out += _box(_x(1), y, "chain[%d]" % n, [_short(layer.chain_id), chain_note], COLORS[1], layer.chain_id)
    db_lines = ["sha256/" + _short(layer.chain_id), "size " + (files["size"] or "MISSING"), "cache-id " + _short(files["cache-id"])]
    broken_db = files["diff"] is None or files["size"] is None or files["cache-id"] is None
    out += _box(_x(2), y, "layerdb", db_lines, COLORS[2], str(layer.layerdb_dir), broken_db)
    lower = "lower: %d link%s" % (len(layer.lower), "" if len(layer.lower) == 1 else "s") if layer.lower else "lower: none (base)"
    ov_lines = [_short(files["cache-id"]) + "/diff", "link " + (layer.link_id or "MISSING")[:14] + "…", lower]
    out += _box(_x(3), y, "overlay2", ov_lines, COLORS[3], str(layer.overlay_dir), layer.overlay_dir is None or layer.link_id is None)
    target = layer.link_target or "MISSING"
    out += _box(_x(4), y, "l/ symlink", ["l/" + (layer.link_id or "?")[:14] + "…", "-> " + _fit(target, 24)], COLORS[4],
                "l/%s -> %s" % (layer.link_id, target), layer.link_target is None)
    out += _edge(_x(0) + BOX_W, mid, _x(1), mid, "")
    out += _edge(_x(1) + BOX_W, mid, _x(2), mid, "dir name")
    out += _edge(_x(2) + BOX_W, mid, _x(3), mid, "cache-id")
    out += _edge(_x(3) + BOX_W, mid, _x(4), mid, "link")
    if n:
        below = _row_y(walk, n - 1)
        out += _edge(_x(1) + BOX_W / 2, y + BOX_H, _x(1) + BOX_W / 2, below, "parent")
        out += _edge(_x(3) + BOX_W - 30, y + BOX_H, _x(4) + 30, below, "lower", "lower")
    return out
