"""The image factory writes the bytes it promises, the same ones every time."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from tests.support.imagefactory import EMPTY_LAYER, FACTORY_SUITE, IndexBuilder, LayerBuilder
from tests.support.tarlayer import Header, pax_records

EMPTY_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def members(tar: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {m.name: m for m in archive.getmembers()}


def test_empty_layer_is_1024_zero_bytes() -> None:
    assert EMPTY_LAYER == b"\0" * 1024
    assert "sha256:" + hashlib.sha256(EMPTY_LAYER).hexdigest() == EMPTY_DIFF_ID


def test_header_checksum_and_base256_ids() -> None:
    block = Header(b"f", uid=3000000, gid=7, mtime=-100).encode()
    assert len(block) == 512
    assert block[108] == 0x80 and int.from_bytes(block[109:116], "big") == 3000000
    assert block[136] == 0xFF  # negative mtime, two's complement base-256
    assert int(block[148:154], 8) == sum(block[:148]) + 8 * 32 + sum(block[156:])


def test_pax_record_lengths_count_themselves() -> None:
    body = pax_records({"mtime": "1700000011.123456789", "path": "x" * 95})
    for record in body.splitlines(keepends=True):
        assert int(record.split(b" ", 1)[0]) == len(record)


def test_tarfile_reads_the_features_back() -> None:
    tar = (
        LayerBuilder()
        .file("big", b"1", uid=3000000, gid=3000000)
        .file("frac", b"2", pax={"mtime": "1700000011.5"}, xattrs={"user.x": b"v"})
        .file("g/" + "n" * 120, b"3", long="gnu", magic="gnu")
        .file("p/" + "n" * 120, b"4")
        .hardlink("h", "big", mode=0o600)
        .chardev("c", 1, 3)
        .whiteout("d/gone")
        .opaque("d")
        .build(trailing=b"\0" * 9216)
    )
    found = members(tar)
    assert found["big"].uid == 3000000
    assert found["frac"].pax_headers["mtime"] == "1700000011.5"
    assert found["frac"].pax_headers["SCHILY.xattr.user.x"] == "v"
    assert found["g/" + "n" * 120].size == 1 and found["p/" + "n" * 120].size == 1
    assert found["h"].islnk() and found["h"].mode == 0o600
    assert (found["c"].devmajor, found["c"].devminor) == (1, 3)
    assert found["d/.wh.gone"].uid == 1000 and "d/.wh..wh..opq" in found
    assert len(tar) % 512 == 0 and tar.endswith(b"\0" * (9216 + 1024))


@pytest.mark.parametrize("name", sorted(FACTORY_SUITE))
def test_suite_is_deterministic_and_consistent(name: str) -> None:
    first, second = FACTORY_SUITE[name](), FACTORY_SUITE[name]()
    assert first.media_type == second.media_type
    images = first.images if isinstance(first, IndexBuilder) else [first]
    if isinstance(first, IndexBuilder):
        assert first.index_bytes() == second.index_bytes()
    else:
        assert first.manifest_bytes() == second.manifest_bytes()
    for image in images:
        config = json.loads(image.config_bytes())
        assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
        non_empty = [h for h in config["history"] if not h.get("empty_layer")]
        assert len(non_empty) == len(image.layers)


def test_gzip_twin_keeps_image_id_and_changes_blobs() -> None:
    image = FACTORY_SUITE["zstd"]()
    twin = image.gzip_twin()
    assert image.needs_gzip_twin and not twin.needs_gzip_twin
    assert image.config_bytes() == twin.config_bytes()
    assert [layer.digest for layer in image.layers] != [layer.digest for layer in twin.layers]
    assert all(layer.blob[:3] == b"\x1f\x8b\x08" for layer in twin.layers)
