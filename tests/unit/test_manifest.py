"""Manifest parsing, dockerd 20.10's media-type gate, and platform selection."""

from __future__ import annotations

import json

import pytest

from emustore import manifest as m
from emustore.errors import ManifestError
from emustore.platform import Platform

D = ["sha256:" + c * 64 for c in "0123456789abcdef"]


def desc(media_type: str, digest: str, size: int = 10, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image(config_type: str = m.DOCKER_CONFIG, layer_types: tuple[str, ...] = (m.DOCKER_LAYER,),
          media_type: str | None = m.DOCKER_MANIFEST) -> dict:
    doc: dict = {
        "schemaVersion": 2,
        "config": desc(config_type, D[0]),
        "layers": [desc(t, D[i + 1]) for i, t in enumerate(layer_types)],
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


def index(*platforms: dict | None, media_type: str | None = m.OCI_INDEX) -> dict:
    entries = []
    for i, p in enumerate(platforms):
        entry = desc(m.OCI_MANIFEST, D[i])
        if p is not None:
            entry["platform"] = p
        entries.append(entry)
    doc: dict = {"schemaVersion": 2, "manifests": entries}
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


def parse(doc: object, content_type: str | None = None):
    return m.parse_manifest(json.dumps(doc).encode(), content_type)


def test_docker_manifest() -> None:
    doc = image(layer_types=(m.DOCKER_LAYER, m.DOCKER_FOREIGN_LAYER))
    doc["layers"][1]["urls"] = ["https://example.invalid/layer"]
    parsed = parse(doc)
    assert isinstance(parsed, m.ImageManifest)
    assert parsed.media_type == m.DOCKER_MANIFEST
    assert parsed.config == m.Descriptor(m.DOCKER_CONFIG, D[0], 10)
    assert [layer.digest for layer in parsed.layers] == [D[1], D[2]]
    assert parsed.layers[1].urls == ("https://example.invalid/layer",)


def test_kind_from_content_type_then_shape() -> None:
    assert parse(image(media_type=None), m.DOCKER_MANIFEST).media_type == m.DOCKER_MANIFEST
    assert parse(image(media_type=None), "application/vnd.oci.image.manifest.v1+json; charset=utf-8").media_type \
        == m.OCI_MANIFEST
    assert parse(image(media_type=None)).media_type == m.OCI_MANIFEST
    assert parse(image(media_type=None), "application/json").media_type == m.OCI_MANIFEST
    assert isinstance(parse(index(AMD64, media_type=None)), m.ImageIndex)
    assert parse(index(AMD64, media_type=None), m.DOCKER_MANIFEST_LIST).media_type == m.DOCKER_MANIFEST_LIST
    # The document's own mediaType wins over the header.
    assert parse(image(media_type=m.OCI_MANIFEST), m.DOCKER_MANIFEST).media_type == m.OCI_MANIFEST


def test_index_entries() -> None:
    parsed = parse(index(AMD64, ARM64))
    assert isinstance(parsed, m.ImageIndex)
    assert [e.platform for e in parsed.manifests] == [AMD64, ARM64]
    assert parsed.manifests[0].annotations == {}


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        ({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}, None),
        ({"schemaVersion": 1, "fsLayers": []}, m.DOCKER_SCHEMA1_SIGNED),
        ({"schemaVersion": 1, "mediaType": m.DOCKER_SCHEMA1}, "application/json"),
    ],
)
def test_schema1_refused(doc: dict, content_type: str | None) -> None:
    with pytest.raises(ManifestError, match="schema 1 manifests are not supported"):
        parse(doc, content_type)


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"{not json", None, "invalid manifest: not JSON"),
        (b"[]", None, "invalid manifest: not a JSON object"),
        (json.dumps({"schemaVersion": 2}).encode(), None, "neither manifests nor config and layers"),
        (json.dumps({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}).encode(), None,
         'unsupported manifest media type "application/vnd.oci.artifact.manifest.v1+json"'),
        (json.dumps({"schemaVersion": 2}).encode(), "text/weird", 'unsupported manifest media type "text/weird"'),
        (json.dumps({**image(), "schemaVersion": 3}).encode(), None, "schemaVersion is 3, expected 2"),
        (json.dumps({**image(), "layers": {}}).encode(), None, '"layers" is not a list'),
        (json.dumps({**image(), "config": None}).encode(), None, "config is not a JSON object"),
        (json.dumps({**index(), "manifests": None}).encode(), None, '"manifests" is not a list'),
        (json.dumps({**image(), "config": desc(m.DOCKER_CONFIG, "sha512:" + "a" * 128)}).encode(), None,
         "config digest 'sha512:"),
        (json.dumps({**image(), "config": desc(m.DOCKER_CONFIG, "sha256:" + "A" * 64)}).encode(), None,
         "is not sha256:<64 lowercase hex>"),
        (json.dumps({**image(), "config": desc(m.DOCKER_CONFIG, D[0], -1)}).encode(), None, "invalid size -1"),
        (json.dumps({**image(), "config": desc(m.DOCKER_CONFIG, D[0], True)}).encode(), None, "invalid size True"),
        (json.dumps({**image(), "config": {"digest": D[0]}}).encode(), None, "invalid size None"),
        (json.dumps({**image(), "config": desc(m.DOCKER_CONFIG, D[0], urls="x")}).encode(), None, "urls"),
        (json.dumps({**index(), "manifests": [desc(m.OCI_MANIFEST, D[0], platform="linux")]}).encode(), None,
         "platform is not a JSON object"),
    ],
)
def test_malformed(data: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        m.parse_manifest(data, content_type)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "media_type",
    [
        "", "application/octet-stream", "application/json", "text/html",
        m.DOCKER_LAYER, m.DOCKER_FOREIGN_LAYER, m.OCI_LAYER, m.OCI_LAYER_GZIP, m.OCI_LAYER_ZSTD,
        m.OCI_LAYER_NONDIST, m.OCI_LAYER_NONDIST_GZIP, m.OCI_LAYER_NONDIST_ZSTD,
        "APPLICATION/VND.DOCKER.IMAGE.ROOTFS.DIFF.TAR.GZIP", "application/vnd.docker.anything",
    ],
)
def test_gate_accepts(media_type: str) -> None:
    assert m.is_supported_media_type(media_type)
    m.check_media_types(parse(image(m.OCI_CONFIG, (media_type,), m.OCI_MANIFEST)))


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.oci.images_are_fun", "application/vnd.dockerx.layer",
        "application/vnd.dev.cosign.simplesigning.v1+json", "application/vnd.in-toto+json",
        "application/tar", "text/plain",
    ],
)
def test_gate_refuses_layer(media_type: str) -> None:
    assert not m.is_supported_media_type(media_type)
    with pytest.raises(ManifestError) as info:
        m.check_media_types(parse(image(m.OCI_CONFIG, (m.OCI_LAYER_GZIP, media_type), m.OCI_MANIFEST)))
    assert str(info.value).startswith(f'unsupported media type "{media_type}" for layer {D[2]}')


def test_gate_refuses_artifact_config_in_oci_manifest() -> None:
    doc = image("application/vnd.cncf.helm.config.v1+json", (m.OCI_LAYER_GZIP,), m.OCI_MANIFEST)
    with pytest.raises(ManifestError, match='unsupported media type "application/vnd.cncf.helm.config.v1\\+json" '
                                            "for config"):
        m.check_media_types(parse(doc))


@pytest.mark.parametrize("config_type", [m.DOCKER_CONFIG, m.OCI_CONFIG, "application/octet-stream",
                                         "application/json", "text/html", ""])
def test_schema2_config_types_accepted(config_type: str) -> None:
    m.check_media_types(parse(image(config_type)))


@pytest.mark.parametrize("config_type", ["application/vnd.docker.plugin.v1+json",
                                         "application/vnd.docker.container.image.v1+json.extra",
                                         "APPLICATION/JSON"])
def test_schema2_config_types_refused(config_type: str) -> None:
    # These pass the general gate but a Docker schema-2 manifest needs an image config type.
    with pytest.raises(ManifestError) as info:
        m.check_media_types(parse(image(config_type)))
    assert str(info.value).startswith(f'refusing config media type "{config_type}": not a container image config')


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
ARMV6 = {"os": "linux", "architecture": "arm", "variant": "v6"}
ARMV7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
ATTESTATION = {"os": "unknown", "architecture": "unknown"}


def test_select_platform_skips_attestations() -> None:
    idx = parse(index(ATTESTATION, AMD64, ATTESTATION, ARM64))
    assert m.select_platform(idx, Platform("linux", "amd64")).digest == D[1]
    assert m.select_platform(idx, Platform("linux", "arm64")).digest == D[3]
    assert m.select_platform(idx, Platform("linux", "arm64", "v8")).digest == D[3]


def test_select_platform_arm_variants() -> None:
    idx = parse(index(ARMV6, ARMV7))
    assert m.select_platform(idx, Platform("linux", "arm", "v7")).digest == D[1]
    assert m.select_platform(idx, Platform("linux", "arm")).digest == D[1]
    assert m.select_platform(idx, Platform("linux", "arm", "v6")).digest == D[0]
    only_v6 = parse(index(AMD64, ARMV6))
    assert m.select_platform(only_v6, Platform("linux", "arm", "v7")).digest == D[1]


def test_select_platform_list_order_and_missing_platform() -> None:
    idx = parse(index(None, AMD64, AMD64))
    assert m.select_platform(idx, Platform("linux", "amd64")).digest == D[1]


def test_select_platform_no_match() -> None:
    idx = parse(index(AMD64, ATTESTATION))
    with pytest.raises(ManifestError) as info:
        m.select_platform(idx, Platform("linux", "arm64"))
    assert str(info.value) == "no matching manifest for linux/arm64 in the manifest list entries"
