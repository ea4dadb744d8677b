"""The engine dialects (emustore/engines.py): version mapping, and what each changes in a layer's
tar-split and xattrs (the engine tiers compare the whole trees with the real engines)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path

import pytest

from emustore.engines import DOCKER_20_10, DOCKER_26, DOCKER_28, ENGINE_ENV, dialect_for
from emustore.errors import UsageError
from emustore.layers.pipeline import UnpackOptions, unpack_layer
from emustore.layers.tarsplit import TarSplitPacker
from emustore.pull import PullOptions
from tests.support.tarlayer import LayerBuilder


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("17.03", DOCKER_20_10), ("19.03.15", DOCKER_20_10), ("20.10", DOCKER_20_10), ("23.0.6", DOCKER_20_10),
        ("24", DOCKER_26), ("25.0.5", DOCKER_26), ("26.1.5", DOCKER_26),
        ("27.5.1", DOCKER_28), ("28", DOCKER_28), ("29.1", DOCKER_28),
    ],
)  # fmt: skip
def test_versions_map_to_the_nearest_observed_dialect(version: str, expected: object) -> None:
    assert dialect_for(version) is expected


@pytest.mark.parametrize("version", ["", "x", "26.x", "v26", "1.13", "26.1.5.1"])
def test_bad_versions_are_usage_errors(version: str) -> None:
    with pytest.raises(UsageError) as caught:
        dialect_for(version)
    assert caught.value.exit_code == 125 and "\n" not in str(caught.value)


def test_without_a_choice_the_root_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    (tmp_path / "engine-id").write_text("0f6b9d8e-3c1a-4f7e-9a2b-5d4c3b2a1f00")
    assert PullOptions().for_root(tmp_path).dialect is DOCKER_28  # 26+, its containers do not tell: 28
    assert PullOptions(engine="26").for_root(tmp_path).dialect is DOCKER_26
    assert PullOptions().for_root(tmp_path / "fresh").dialect is DOCKER_20_10


def test_the_environment_picks_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert dialect_for(None) is DOCKER_20_10 and PullOptions().dialect is DOCKER_20_10
    monkeypatch.setenv(ENGINE_ENV, "28.5.2")
    assert dialect_for(None) is DOCKER_28 and PullOptions().dialect is DOCKER_28
    assert PullOptions(engine="26").dialect is DOCKER_26  # the option wins
    monkeypatch.setenv(ENGINE_ENV, "bad")
    with pytest.raises(UsageError, match=ENGINE_ENV):
        PullOptions()


@pytest.mark.parametrize(("go122", "escaped"), [(False, b"\\u0008\\u000c"), (True, b"\\b\\f")])
def test_tar_split_names_use_the_engines_json_escapes(go122: bool, escaped: bytes) -> None:
    out = io.BytesIO()
    packer = TarSplitPacker(out, go122)
    packer.add_file(b"a\x08\x0c\x01", 0, None)
    packer.close()
    line = gzip.decompress(out.getvalue())
    assert b'"name":"a' + escaped + b'\\u0001"' in line


def _unpack(tmp_path: Path, layer: LayerBuilder, options: UnpackOptions) -> tuple[Path, list[bytes]]:
    blob = gzip.compress(layer.build(), mtime=0)
    diff, tar_split = tmp_path / "diff", tmp_path / "ts.json.gz"
    diff.mkdir()
    unpack_layer(iter([blob]), "sha256:" + hashlib.sha256(blob).hexdigest(), str(diff), str(tar_split), options)
    return diff, gzip.decompress(tar_split.read_bytes()).splitlines()


@pytest.mark.parametrize(("dialect", "final_empty"), [(DOCKER_20_10, True), (DOCKER_26, False), (DOCKER_28, False)])
def test_only_2010_ends_a_tar_split_with_an_empty_segment(tmp_path: Path, dialect: object, final_empty: bool) -> None:
    _, lines = _unpack(tmp_path, LayerBuilder().file("f", b"x"), UnpackOptions(dialect=dialect))  # type: ignore[arg-type]
    assert lines[-1].startswith(b'{"type":2,"payload":"",') is final_empty
    assert sum(line.startswith(b'{"type":2,"payload":"",') for line in lines) == int(final_empty)


@pytest.mark.parametrize(("dialect", "kept"), [(DOCKER_20_10, False), (DOCKER_26, True), (DOCKER_28, True)])
def test_empty_xattr_values_are_set_from_26_on(tmp_path: Path, dialect: object, kept: bool) -> None:
    layer = LayerBuilder().file("f", b"x", xattrs={"user.empty": b"", "user.full": b"v"})
    diff, _ = _unpack(tmp_path, layer, UnpackOptions(dialect=dialect))  # type: ignore[arg-type]
    expected = {"user.full", "user.empty"} if kept else {"user.full"}
    assert set(os.listxattr(diff / "f")) == expected
