"""JSON text exactly as Go's encoding/json writes it (HTML-safe; Go 1.19 escapes, or Go 1.22's)."""

from collections.abc import Mapping

_ESCAPES = {i: "\\u%04x" % i for i in range(0x20)}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})
_ESCAPES.update({ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"})
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_ESCAPES_GO122 = {**_ESCAPES, 0x08: "\\b", 0x0C: "\\f"}  # Go >= 1.22 writes these two short forms


def go_string(text: str, go122: bool = False) -> str:
    """Quote a (valid Unicode) string the way Go's json.Marshal does (`go122`: Go >= 1.22's)."""
    return '"' + text.translate(_ESCAPES_GO122 if go122 else _ESCAPES) + '"'


def go_json(value: object, go122: bool = False) -> str:
    """Compact JSON as Go's json.Marshal writes it; dict order is kept (sort maps first)."""
    if isinstance(value, str):
        return go_string(value, go122)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(go_string(k, go122) + ":" + go_json(v, go122) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v, go122) for v in value) + "]"
    raise TypeError("cannot encode %r as Go JSON" % type(value).__name__)


def sorted_map(mapping: Mapping[str, object]) -> dict[str, object]:
    """A copy with keys in Go's map order (byte-wise sorted)."""
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8"))}
