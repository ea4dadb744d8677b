import pytest

from emustore.gojson import go_json, go_string, sorted_map
from emustore.layers.gopath import go_base, go_clean, go_dir


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        (b"", b"."),
        (b"./", b"."),
        (b"./a/b/", b"a/b"),
        (b"a//b/./c/..", b"a/b"),
        (b"../up", b"../up"),
        (b"a/../../x", b"../x"),
        (b"/../abs", b"/abs"),
        (b"//a", b"/a"),
        (b"/", b"/"),
    ],
)
def test_go_clean(raw: bytes, cleaned: bytes) -> None:
    assert go_clean(raw) == cleaned


def test_dir_and_base() -> None:
    assert go_dir(b"a/b/c") == b"a/b"
    assert go_dir(b"c") == b"."
    assert go_dir(b"/c") == b"/"
    assert go_base(b"a/b/.wh.c") == b".wh.c"
    assert go_base(b"/") == b"/"


def test_go_string_escapes_like_go() -> None:
    assert go_string('n/a<b>&c') == '"n/a\\u003cb\\u003e\\u0026c"'
    assert go_string("\b\f\n\r\t\x01\x7f") == '"\\u0008\\u000c\\n\\r\\t\\u0001\x7f"'
    assert go_string('"\\') == '"\\"\\\\"'
    assert go_string("\u2028é") == '"\\u2028é"'


def test_go_json_compact_and_ordered() -> None:
    doc = {"Repositories": sorted_map({"b": {"x": "1"}, "a": {}})}
    assert go_json(doc) == '{"Repositories":{"a":{},"b":{"x":"1"}}}'
    assert go_json([{"Digest": "d", "SourceRepository": "r", "HMAC": ""}]) == '[{"Digest":"d","SourceRepository":"r","HMAC":""}]'
    assert go_json(None) == "null"


@pytest.mark.parametrize(
    "raw", [b"a", b"a/b", b"a/b/c", b"/", b"/a", b"/a/b", b".", b"..", b"../a", b"a/../../b", b"./a//b/", b"/../x", b".wh.a", b"d/.wh..wh..opq"]
)
def test_extractor_split_of_a_cleaned_name_is_gos_dir_and_base(raw: bytes) -> None:
    from emustore.layers.extract import _dir_and_base

    cleaned = go_clean(raw)
    assert _dir_and_base(cleaned) == (go_dir(cleaned), go_base(cleaned))
