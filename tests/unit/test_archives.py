"""Archives without a daemon: OCI layout → load → save → load round trips, compressed and streamed
archives, `pull --from`, bad input, and the reads dockerd's load cuts a plain layer into."""

from __future__ import annotations

import gzip
import io
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from emustore.errors import EmustoreError
from emustore.layers.compression import file_read_cuts
from emustore.load import load, pull_from
from emustore.reference import parse_reference
from emustore.save import save_to_path
from tests.support.imagefactory import ImageBuilder, LayerBuilder, busybox_image, whiteout_layers
from tests.support.treecompare import diff_trees

TAG = "127.0.0.1:5000/unit/arch:v1"


def write_oci_layout(directory: Path, image: ImageBuilder, name: str | None = TAG) -> None:
    """An OCI image layout of one image, tagged with the containerd name annotation."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in [image.config_bytes(), image.manifest_bytes(), *(layer.blob for layer in image.layers)]:
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    manifest = image.manifest_bytes()
    entry: dict[str, object] = {
        "mediaType": image.media_type,
        "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        "size": len(manifest),
    }
    if name:
        entry["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "v1"}
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def sample_image() -> ImageBuilder:
    """Whiteouts, an uncompressed layer with 40000 trailing zero bytes, and a repeated blob."""
    content, deletions = whiteout_layers()
    padded = LayerBuilder().file("pad", b"p\n").build(trailing=b"\0" * 40000)
    return (
        busybox_image("oci")
        .layer(content)
        .layer(deletions)
        .layer(padded, compression="none")
        .layer(content)
    )


def layer_digests(archive: Path) -> list[str]:
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        return ["sha256:" + hashlib.file_digest(tf.extractfile(name), "sha256").hexdigest() for name in manifest[0]["Layers"]]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An OCI layout loaded into a root, and that root saved as docker and OCI archives."""
    base = tmp_path_factory.mktemp("archives")
    write_oci_layout(base / "layout", sample_image())
    list(load(base / "layout", base / "from-layout"))
    save_to_path(base / "from-layout", [TAG], base / "saved.tar")
    save_to_path(base / "from-layout", [TAG], base / "saved-oci.tar", "oci")
    list(load(base / "saved.tar", base / "from-saved"))
    return {"base": base, "layout": base / "layout", "root": base / "from-layout", "saved": base / "saved.tar",
            "saved_oci": base / "saved-oci.tar", "reloaded": base / "from-saved"}  # fmt: skip


def test_oci_layout_load_registers_like_docker_load(loaded: dict[str, Path]) -> None:
    root = loaded["root"]
    image = sample_image()
    image_id = "sha256:" + hashlib.sha256(image.config_bytes()).hexdigest()
    repos = json.loads((root / "image/overlay2/repositories.json").read_bytes())
    assert repos == {"Repositories": {"127.0.0.1:5000/unit/arch": {TAG: image_id}}}
    assert sorted(p.name for p in (root / "image/overlay2/distribution").iterdir()) == []
    assert list((root / "image/overlay2/imagedb/metadata/sha256").iterdir()) == []
    assert len(list((root / "image/overlay2/layerdb/sha256").iterdir())) == len(image.layers)


def test_saved_layer_tars_are_the_diff_ids(loaded: dict[str, Path]) -> None:
    assert layer_digests(loaded["saved"]) == [layer.diff_id for layer in sample_image().layers]


def test_saved_archive_loads_to_the_same_files(loaded: dict[str, Path]) -> None:
    """Same diff dirs and metadata; only tar-splits of re-packed layers may be cut differently."""
    differences = [d for d in diff_trees(loaded["root"], loaded["reloaded"]) if "tar-split.json.gz" not in d]
    assert differences == []


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_archive_loads_like_the_plain_one(loaded: dict[str, Path], codec: str, tmp_path: Path) -> None:
    data = loaded["saved"].read_bytes()
    packed = gzip.compress(data) if codec == "gzip" else zstandard.ZstdCompressor().compress(data)
    archive = tmp_path / f"saved.tar.{codec}"
    archive.write_bytes(packed)
    list(load(archive, tmp_path / "root"))
    assert diff_trees(loaded["reloaded"], tmp_path / "root") == []


def test_oci_archive_and_stream_load_like_the_docker_archive(loaded: dict[str, Path], tmp_path: Path) -> None:
    with loaded["saved"].open("rb") as stream:
        list(load(stream, tmp_path / "streamed"))
    assert diff_trees(loaded["reloaded"], tmp_path / "streamed") == []
    list(load(loaded["saved_oci"], tmp_path / "oci"))
    assert diff_trees(loaded["reloaded"], tmp_path / "oci") == []


def test_pull_from_layout_tags_the_given_reference(loaded: dict[str, Path], tmp_path: Path) -> None:
    ref = parse_reference("local/renamed:v2")
    result = pull_from(f"oci-layout:{loaded['layout']}", ref, tmp_path / "root")
    repos = json.loads((tmp_path / "root/image/overlay2/repositories.json").read_bytes())
    assert repos == {"Repositories": {"local/renamed": {"local/renamed:v2": result.image_id}}}
    assert [d for d in diff_trees(loaded["root"], tmp_path / "root") if "repositories.json" not in d] == []


def test_save_streams_to_stdout(loaded: dict[str, Path], tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from emustore.cli import main; main()", "save", "--root", str(loaded["root"]), TAG],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (tmp_path / "stdout.tar").write_bytes(out.stdout)
    assert layer_digests(tmp_path / "stdout.tar") == layer_digests(loaded["saved"])
    with tarfile.open(tmp_path / "stdout.tar") as streamed, tarfile.open(loaded["saved"]) as written:
        assert streamed.getnames() == written.getnames()


def test_bad_archives_fail_with_one_line_and_leave_the_root_alone(loaded: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "root"
    not_tar = tmp_path / "junk.tar"
    not_tar.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(EmustoreError, match="not a"):
        list(load(not_tar, root))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(loaded["saved"].read_bytes()[:-600000])
    with pytest.raises(EmustoreError):
        list(load(truncated, root))
    assert not (root / "image").exists()


def test_a_corrupt_layer_is_refused(loaded: dict[str, Path], tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(layout, sample_image())
    blob = layout / "blobs/sha256" / sample_image().layers[2].digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(EmustoreError, match="verification failed|invalid|gzip"):
        list(load(layout, tmp_path / "root"))
    assert not (tmp_path / "root/image/overlay2/repositories.json").exists()


def test_file_read_cuts_follow_bufio_then_direct_reads() -> None:
    window = 32768
    chunks = [b"a" * 100] + [b"b" * window] * 40 + [b"c" * 10]
    cuts = [len(c) for c in file_read_cuts(iter(chunks), window * 3 + 200)]
    assert cuts == [100, 1 << 20, 8 * window + 10]
    aligned = [len(c) for c in file_read_cuts(iter([b"x" * window] * 3), window * 5)]
    assert aligned == [3 * window]


def test_docker_archive_with_compressed_layer_members(loaded: dict[str, Path], tmp_path: Path) -> None:
    """Layer tars may be compressed (dockerd sniffs them): their digests are computed, not assumed."""
    image = sample_image()
    archive = tmp_path / "hand.tar"
    image.write_docker_archive(archive, TAG)
    list(load(archive, tmp_path / "root"))
    assert diff_trees(loaded["root"], tmp_path / "root") == []


def _archive_with(members: list[tarfile.TarInfo]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"\0" * info.size))
    return buf.getvalue()


def _huge_pax_header() -> bytes:
    info = tarfile.TarInfo("manifest.json")
    info.pax_headers = {"comment": "x" * (4 << 20)}  # tarfile would read any size whole
    return _archive_with([info])


def _many_members() -> bytes:
    return _archive_with([tarfile.TarInfo("f%d" % i) for i in range(100_001)])


@pytest.mark.parametrize("make", [_huge_pax_header, _many_members], ids=["huge-pax-header", "many-members"])
@pytest.mark.parametrize("compress", [bytes, gzip.compress], ids=["plain", "gzip"])
def test_archive_index_is_bounded(make, compress, tmp_path: Path) -> None:
    archive = tmp_path / "hostile.tar"
    archive.write_bytes(compress(make()))
    result = subprocess.run(
        [sys.executable, "-m", "emustore", "load", "-i", str(archive), "--root", str(tmp_path / "root")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "extension header of" in result.stderr or "more than 100000 files" in result.stderr, result.stderr
