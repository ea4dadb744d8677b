"""The §11 comparator on small hand-made data roots (random ids differ between A and B)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
from pathlib import Path

import pytest

from tests.support.treecompare import clean_member_name, diff_trees, normalized_tree

DIFF1 = "sha256:" + "1" * 64
DIFF2 = "sha256:" + "2" * 64
CHAIN1 = DIFF1
CHAIN2 = "sha256:" + hashlib.sha256(f"{CHAIN1} {DIFF2}".encode()).hexdigest()
BLOB1, BLOB2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
IMAGE_ID = "sha256:" + "c" * 64
MANIFEST = "sha256:" + "d" * 64
REPO = "127.0.0.1:5000/test/x"
MTIME = 1_700_000_000_123_456_789
GO_HEADER = bytes.fromhex("1f8b08000000000000ff")  # dockerd's tar-split gzip header (format doc §6.1)


def tar_split(*names: str) -> bytes:
    lines = [{"type": 2, "payload": "", "position": 0}]
    lines += [{"type": 1, "name": n, "payload": None, "position": i + 1} for i, n in enumerate(names)]
    return GO_HEADER + gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines))[10:]


def write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def make_root(root: Path, *, blobs: tuple[str, str] = (BLOB1, BLOB2), repo: str = REPO) -> Path:
    """Two layers (base + child) with fresh random cache and link ids."""
    image = root / "image/overlay2"
    parent_link = ""
    for chain, diff, blob, parent, names in (
        (CHAIN1, DIFF1, blobs[0], None, ("etc/", "etc/f", "etc/hard", "implicit/file")),
        (CHAIN2, DIFF2, blobs[1], CHAIN1, ("etc/g",)),
    ):
        cache_id, link_id = secrets.token_hex(32), secrets.token_hex(13).upper()[:26]
        layer = image / "layerdb/sha256" / chain[7:]
        write(layer / "cache-id", cache_id)
        write(layer / "diff", diff)
        write(layer / "size", "10")
        write(layer / "tar-split.json.gz", tar_split(*names))
        if parent:
            write(layer / "parent", parent)
        layer_dir = root / "overlay2" / cache_id
        (layer_dir / "diff").mkdir(parents=True)
        write(layer_dir / "link", link_id)
        if parent_link:
            write(layer_dir / "lower", f"l/{parent_link}")
            (layer_dir / "work").mkdir(mode=0o700)
        (root / "overlay2/l").mkdir(exist_ok=True)
        os.symlink(f"../{cache_id}/diff", root / "overlay2/l" / link_id)
        for name in names:
            target = layer_dir / "diff" / name
            if name.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            elif name.endswith("hard"):
                os.link(target.parent / "f", target)
            else:
                write(target, name)
        for name in names:
            os.utime(layer_dir / "diff" / name, ns=(MTIME, MTIME), follow_symlinks=False)
        write(image / "distribution/diffid-by-digest/sha256" / blob[7:], diff)
        entries = [{"Digest": blob, "SourceRepository": repo, "HMAC": ""}]
        v2metadata = image / "distribution/v2metadata-by-diffid/sha256" / diff[7:]
        write(v2metadata, json.dumps(entries, separators=(",", ":")))
        parent_link = link_id
    refs = {f"{repo}:v1": IMAGE_ID, f"{repo}@{MANIFEST}": IMAGE_ID}
    repositories = json.dumps({"Repositories": {repo: refs}}, separators=(",", ":"))
    write(image / "repositories.json", repositories, 0o600)
    write(image / "imagedb/content/sha256" / IMAGE_ID[7:], "{}", 0o600)
    (root / "tmp").mkdir(mode=0o700)
    return root


def cache_dir(root: Path, chain: str) -> Path:
    return root / "overlay2" / (root / "image/overlay2/layerdb/sha256" / chain[7:] / "cache-id").read_text()


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    return make_root(tmp_path / "a"), make_root(tmp_path / "b")


def test_equal_trees_with_different_random_ids(roots: tuple[Path, Path]) -> None:
    a, b = roots
    assert cache_dir(a, CHAIN1).name != cache_dir(b, CHAIN1).name
    assert diff_trees(a, b) == []


def test_random_ids_become_chain_tokens(roots: tuple[Path, Path]) -> None:
    tree = normalized_tree(roots[0])
    c1, c2 = CHAIN1[7:], CHAIN2[7:]
    assert tree[f"image/overlay2/layerdb/sha256/{c2}/cache-id"].content == f"C:{c2}".encode()
    assert tree[f"overlay2/C:{c2}/link"].content == f"K:{c2}".encode()
    assert tree[f"overlay2/C:{c2}/lower"].content == f"l/K:{c1}".encode()
    assert tree[f"overlay2/l/K:{c1}"].content == f"../C:{c1}/diff"
    assert not [path for path in tree if "?" in path]


def test_changed_mode_is_one_line(roots: tuple[Path, Path]) -> None:
    a, b = roots
    os.chmod(cache_dir(b, CHAIN2) / "diff/etc/g", 0o4755)
    assert diff_trees(a, b) == [f"overlay2/C:{CHAIN2[7:]}/diff/etc/g: mode 0644 != 4755"]


def test_changed_xattr_is_one_line(roots: tuple[Path, Path]) -> None:
    a, b = roots
    os.setxattr(cache_dir(b, CHAIN2) / "diff/etc/g", "user.x", b"v")
    (line,) = diff_trees(a, b)
    assert line.startswith(f"overlay2/C:{CHAIN2[7:]}/diff/etc/g: xattrs () != (('user.x', b'v'),)")


def test_mtime_compared_only_for_entries_with_a_header(roots: tuple[Path, Path]) -> None:
    a, b = roots
    diff = cache_dir(b, CHAIN1) / "diff"
    os.utime(diff / "implicit", ns=(1, 1))  # implicit parent: dockerd's own time, ignored
    os.utime(diff, ns=(1, 1))  # diff/ root, ignored
    assert diff_trees(a, b) == []
    os.utime(diff / "etc", ns=(MTIME + 1, MTIME + 1))  # had a header
    assert diff_trees(a, b) == [f"overlay2/C:{CHAIN1[7:]}/diff/etc: mtime_ns {MTIME} != {MTIME + 1}"]


def test_extra_and_missing_files(roots: tuple[Path, Path]) -> None:
    a, b = roots
    write(cache_dir(b, CHAIN2) / "committed", "", 0o600)
    (a / "image/overlay2/repositories.json").unlink()
    assert diff_trees(a, b) == [
        "only in B: image/overlay2/repositories.json (f)",
        f"only in B: overlay2/C:{CHAIN2[7:]}/committed (f)",
    ]


def test_content_difference_names_the_line(roots: tuple[Path, Path]) -> None:
    a, b = roots
    write(b / "image/overlay2/layerdb/sha256" / CHAIN1[7:] / "size", "10\n")
    size = f"image/overlay2/layerdb/sha256/{CHAIN1[7:]}/size"
    assert diff_trees(a, b) == [f"{size}: content: 1 lines != 2 lines"]


def test_tar_split_gzip_header_is_compared_not_the_deflate_bytes(roots: tuple[Path, Path]) -> None:
    a, b = roots
    path = b / "image/overlay2/layerdb/sha256" / CHAIN1[7:] / "tar-split.json.gz"
    lines = gzip.decompress(path.read_bytes())
    write(path, GO_HEADER + gzip.compress(lines, compresslevel=1)[10:])  # other deflate bytes
    assert diff_trees(a, b) == []
    with gzip.GzipFile("named", "wb", fileobj=(named := io.BytesIO()), mtime=0) as gz:
        gz.write(lines)
    write(path, named.getvalue())
    assert diff_trees(a, b) == [
        f"image/overlay2/layerdb/sha256/{CHAIN1[7:]}/tar-split.json.gz: content line 1: "
        "b'gzip header 1f8b08000000000000ff' != b'gzip header 1f8b08080000000002ff'"
    ]


def test_broken_hard_link_is_reported(roots: tuple[Path, Path]) -> None:
    a, b = roots
    hard = cache_dir(b, CHAIN1) / "diff/etc/hard"
    hard.unlink()
    write(hard, "etc/f")
    os.utime(hard, ns=(MTIME, MTIME))
    os.utime(hard.parent, ns=(MTIME, MTIME))
    lines = diff_trees(a, b)
    assert len(lines) == 2 and all("hardlinks" in line for line in lines)


def test_ignored_parts(roots: tuple[Path, Path]) -> None:
    a, b = roots
    write(b / "tmp/GetImageBlob123", "partial")
    write(b / "containerd/daemon/meta.db", "bolt")
    write(b / "network/files/local-kv.db", "kv")
    write(b / "image/overlay2/layerdb/tmp/write-set-1/diff", "x")
    (a / "image/overlay2/layerdb/tmp").mkdir()
    (cache_dir(b, CHAIN2) / "work/work").mkdir(mode=0)
    for root, stamp in ((a, "2026-01-01T00:00:00Z"), (b, "2026-11-28T21:57:11.718349434Z")):
        write(root / "image/overlay2/imagedb/metadata/sha256" / IMAGE_ID[7:] / "lastUpdated", stamp, 0o600)
    assert diff_trees(a, b) == []


def test_containers_are_mapped_through_mounts(roots: tuple[Path, Path]) -> None:
    a, b = roots
    for root in (a, b):
        container, mount = secrets.token_hex(32), secrets.token_hex(32)
        mounts = root / "image/overlay2/layerdb/mounts" / container
        write(mounts / "mount-id", mount)
        write(mounts / "init-id", mount + "-init")
        write(mounts / "parent", CHAIN2)
        for cache_id in (mount, mount + "-init"):
            (root / "overlay2" / cache_id / "diff").mkdir(parents=True)
            link = secrets.token_hex(13).upper()[:26]
            write(root / "overlay2" / cache_id / "link", link)
            os.symlink(f"../{cache_id}/diff", root / "overlay2/l" / link)
    assert diff_trees(a, b) == []
    assert f"overlay2/R:M1:{CHAIN2[7:]}-init/link" in normalized_tree(a)


def test_twin_maps_digests_and_names(tmp_path: Path) -> None:
    twin_blobs = ("sha256:" + "e" * 64, "sha256:" + "f" * 64)
    a = make_root(tmp_path / "a")
    b = make_root(tmp_path / "b", blobs=twin_blobs, repo=REPO + "-twin")
    repositories = b / "image/overlay2/repositories.json"
    write(repositories, repositories.read_text().replace(MANIFEST[7:], "9" * 64), 0o600)
    assert len(diff_trees(a, b)) > 4
    blob_map = {twin_blobs[0]: BLOB1, twin_blobs[1]: BLOB2, "sha256:" + "9" * 64: MANIFEST}
    assert diff_trees(a, b, blob_map=blob_map, name_map={REPO + "-twin": REPO}) == []


@pytest.mark.parametrize(
    ("member", "path"),
    [("./", None), ("./a/b", "a/b"), ("a/", "a"), ("../up", "up"), ("/abs", "abs"), ("d/.wh.x", None)],
)
def test_clean_member_name(member: str, path: str | None) -> None:
    assert clean_member_name(member) == path


def test_malformed_metadata_is_reported_not_fatal(roots: tuple[Path, Path]) -> None:
    a, b = roots
    layer = b / "image/overlay2/layerdb/sha256" / CHAIN2[7:]
    write(layer / "tar-split.json.gz", b"\x1f\x8b\x08truncated")
    write(b / "image/overlay2/repositories.json", b"{\xff", 0o600)
    lines = diff_trees(a, b, name_map={"x": "y"})
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"image/overlay2/layerdb/sha256/{CHAIN2[7:]}/tar-split.json.gz",
        "image/overlay2/repositories.json",
        f"overlay2/C:{CHAIN2[7:]}/diff/etc/g",  # B no longer knows etc/g had a header
    ]
    assert lines[2].endswith(f"mtime_ns {MTIME} != None")
