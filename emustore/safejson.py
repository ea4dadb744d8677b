"""JSON from untrusted sources (registries, archives, layouts, token servers, helpers), depth bounded.

Python's json module recurses once per nesting level: a document of a few thousand `[` ends in
a RecursionError (and anything walking a parsed document recurses as deep). `loads` measures the
nesting first with a cheap scan and refuses, as a ValueError like any other bad JSON, a document
nested deeper than MAX_DEPTH levels (real manifests, indexes and configs nest a handful).
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

MAX_DEPTH = 256
# a string, or an unterminated one up to the end: possessive and never retried, so the scan is linear
_STRING = re.compile(rb'"[^"\\]*+(?:\\(?:.|\Z)[^"\\]*+)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 opens, -1 (0xff as a signed byte) closes


class TooDeep(ValueError):
    """A JSON document nested deeper than the limit."""


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, after refusing (TooDeep, a ValueError) a document nested deeper than `max_depth`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if nesting(raw) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(raw)


def nesting(data: bytes) -> int:
    """How deep the arrays and objects of a JSON document nest (exact for valid JSON; brackets
    inside strings do not count; invalid JSON may be over-estimated, never under)."""
    stripped = _STRING.sub(b"", data) if b'"' in data else data
    return max(accumulate(array("b", stripped.translate(_SIGNS, _NOT_BRACKETS))), default=0)
