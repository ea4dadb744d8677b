"""The one-pass layer pipeline: tar-split segments (format doc §6.3), digests and errors."""

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard

from emustore.errors import DigestMismatch, LayerError
from emustore.layers.pipeline import unpack_layer
from emustore.layers.tarsplit import append_empty_segment


def _one_file_tar(size: int = 512) -> bytes:
    """A tar whose end-of-archive marker ends at offset 1024 + size rounded up to 512."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("f")
        info.size = size
        tf.addfile(info, io.BytesIO(b"x" * size))
    end = 512 + -(-size // 512) * 512 + 1024
    return buf.getvalue()[:end]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _run(tmp_path: Path, blob: bytes, chunk: int = 4096) -> tuple[list[dict], object]:
    diff = tmp_path / "diff"
    diff.mkdir()
    ts = tmp_path / "ts.json.gz"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    result = unpack_layer(iter([blob[i : i + chunk] for i in range(0, len(blob), chunk)]), digest, str(diff), str(ts))
    lines = [json.loads(line) for line in gzip.decompress(ts.read_bytes()).splitlines()]
    return lines, result


def _tail_sizes(lines: list[dict]) -> list[int]:
    """Sizes of the segments after the last file entry, end-of-archive segment excluded."""
    last_file = max(i for i, e in enumerate(lines) if e["type"] == 1)
    return [len(base64.b64decode(e["payload"])) for e in lines[last_file + 2 :]]


@pytest.mark.parametrize(
    "compress, trailing, expected",
    [
        (_gzip, 0, [0]),
        (_gzip, 9216, [9216]),
        (_gzip, 102400, [30720, 32768, 32768, 6144]),
        (_gzip, 65536 - 2048, [30720, 32768, 0]),
        (lambda b: b, 0, [0]),
        (lambda b: b, 102400, [30720, 32768, 32768, 6144, 0]),
    ],
)
def test_trailing_segments_follow_go_reads(tmp_path: Path, compress, trailing: int, expected: list[int]) -> None:
    tar = _one_file_tar() + bytes(trailing)
    lines, result = _run(tmp_path, compress(tar))
    assert _tail_sizes(lines) == expected
    assert result.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert [e["position"] for e in lines] == list(range(len(lines)))


def test_entries_shape(tmp_path: Path) -> None:
    lines, result = _run(tmp_path, _gzip(_one_file_tar(5)))
    assert lines[0]["type"] == 2 and len(base64.b64decode(lines[0]["payload"])) == 512
    entry = lines[1]
    assert list(entry) == ["type", "name", "size", "payload", "position"]
    assert entry["name"] == "f" and entry["size"] == 5
    assert base64.b64decode(entry["payload"]) == bytes.fromhex("%016x" % _crc64_iso(b"xxxxx"))
    assert result.size == 5 and result.compression == "gzip"


def test_tar_split_starts_with_gos_gzip_header(tmp_path: Path) -> None:
    """No file name, mtime 0, XFL 0, OS 255 (format doc §6.1), also when re-written for a repeated blob."""
    _run(tmp_path, _gzip(_one_file_tar(5)))
    written = (tmp_path / "ts.json.gz").read_bytes()
    assert written[:10] == bytes.fromhex("1f8b08000000000000ff")
    append_empty_segment(tmp_path / "ts.json.gz", tmp_path / "copy.json.gz")
    copied = (tmp_path / "copy.json.gz").read_bytes()
    assert copied[:10] == written[:10]
    assert gzip.decompress(copied) == gzip.decompress(written) + b'{"type":2,"payload":"","position":4}\n'


def _crc64_iso(data: bytes) -> int:
    """Reference CRC-64/ISO (reflected poly 0xD800000000000000), bit by bit."""
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xD800000000000000 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFFFFFFFFFF


def test_multi_member_gzip_cuts_at_member_end(tmp_path: Path) -> None:
    tar = _one_file_tar() + bytes(4096)
    blob = _gzip(tar[:1000]) + _gzip(tar[1000:])
    lines, result = _run(tmp_path, blob)
    assert result.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert _tail_sizes(lines) == [4096]


def test_zstd_layers_are_decompressed(tmp_path: Path) -> None:
    tar = _one_file_tar(100)
    lines, result = _run(tmp_path, zstandard.ZstdCompressor().compress(tar))
    assert result.compression == "zstd"
    assert result.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert (tmp_path / "diff" / "f").read_bytes() == b"x" * 100


def test_wrong_blob_digest_fails(tmp_path: Path) -> None:
    blob = _gzip(_one_file_tar())
    (tmp_path / "diff").mkdir()
    with pytest.raises(DigestMismatch):
        unpack_layer(iter([blob]), "sha256:" + "0" * 64, str(tmp_path / "diff"), str(tmp_path / "ts"))


def test_trailing_garbage_after_gzip_fails(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        _run(tmp_path, _gzip(_one_file_tar()) + b"garbage")


def test_truncated_gzip_fails(tmp_path: Path) -> None:
    blob = _gzip(_one_file_tar(70000))
    with pytest.raises(LayerError):
        _run(tmp_path, blob[: len(blob) // 2])


def test_duplicate_paths_fail(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("./dup/file", "dup/file"):
            tf.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    with pytest.raises(LayerError, match="duplicates of file paths"):
        _run(tmp_path, buf.getvalue())


def test_raw_deflate_is_not_gzip(tmp_path: Path) -> None:
    """Anything without a known magic is read as a plain tar, and fails as one."""
    with pytest.raises(LayerError):
        _run(tmp_path, zlib.compress(_one_file_tar()))


@pytest.mark.parametrize("forked", [False, True])
def test_a_kept_blob_is_the_blob_and_no_tar_split_is_made(tmp_path: Path, forked: bool) -> None:
    """A store keeping blobs (containerd): the compressed bytes written as they pass, and without
    a tar-split path nothing but the diff dir and the blob is made."""
    from emustore.layers.layer_process import unpack_layer_forked

    blob = _gzip(_one_file_tar(100000) + bytes(range(256)) * 4000)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    diff = tmp_path / "fs"
    diff.mkdir()
    chunks = [blob[i:i + 777] for i in range(0, len(blob), 777)]
    unpack = unpack_layer_forked if forked else unpack_layer
    result = unpack(iter(chunks), digest, str(diff), None, blob_path=str(tmp_path / "blob"))
    assert result.blob_digest == digest
    assert (tmp_path / "blob").read_bytes() == blob
    assert (tmp_path / "blob").stat().st_mode & 0o777 == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "fs"]


def test_a_kept_blob_that_does_not_verify_fails_the_layer(tmp_path: Path) -> None:
    blob = _gzip(_one_file_tar())
    diff = tmp_path / "fs"
    diff.mkdir()
    with pytest.raises(DigestMismatch):
        unpack_layer(iter([blob]), "sha256:" + "0" * 64, str(diff), None, blob_path=str(tmp_path / "blob"))
