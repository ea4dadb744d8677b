"""Manifest and index models, media types, dockerd 20.10's media-type gate and platform selection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emustore import safejson
from emustore.digest import is_digest
from emustore.errors import ManifestError
from emustore.platform import Platform, best_match

# Manifests and indexes.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# What a pull asks for, schema 1 last (only so that a schema-1-only image gets a clear refusal).
MANIFEST_ACCEPT = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX, DOCKER_SCHEMA1_SIGNED)

# Configs.
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# Layers.
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

_SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
_MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
_INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES, INDEX_TYPES = _MANIFEST_TYPES, _INDEX_TYPES
LAYER_TYPES = (  # what containerd counts as layers (its gc.ref.content.l.<n> labels)
    DOCKER_LAYER, DOCKER_FOREIGN_LAYER, "application/vnd.docker.image.rootfs.diff.tar",
    OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD,
)
_GENERIC_CONTENT_TYPES = ("", "application/json", "application/octet-stream", "text/plain")
# dockerd 20.10 (distribution/registry.go): accepted exactly, or as a prefix followed by ".".
_SUPPORTED_MEDIA_TYPES = (
    "application/vnd.oci.image",
    "application/vnd.docker",
    "application/octet-stream",
    "application/json",
    "text/html",
    "",
)
# Config types dockerd 20.10 accepts in a Docker schema-2 manifest (compared exactly).
_SCHEMA2_CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG, "application/octet-stream", "application/json", "text/html", "")

_SCHEMA1_MESSAGE = (
    "schema 1 manifests are not supported (the image is too old; "
    "ask its publisher to push it again with a current client)"
)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest or index says about one blob or manifest."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class ImageIndex:
    """A Docker manifest list or an OCI image index."""

    media_type: str
    manifests: list[Descriptor]


def parse_manifest(data: bytes, content_type: str | None) -> ImageManifest | ImageIndex:
    """Parse a manifest or index; the kind comes from its mediaType, else Content-Type, else its shape."""
    try:
        doc = safejson.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"invalid manifest: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ManifestError("invalid manifest: not a JSON object")
    media_type = _kind(doc, content_type)
    if media_type in _SCHEMA1_TYPES:
        raise ManifestError(_SCHEMA1_MESSAGE)
    if media_type not in _MANIFEST_TYPES + _INDEX_TYPES:
        raise ManifestError(f'unsupported manifest media type "{media_type}"')
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"invalid manifest: schemaVersion is {doc.get('schemaVersion')!r}, expected 2")
    if media_type in _INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError('invalid manifest list: "manifests" is not a list')
        return ImageIndex(media_type, [_descriptor(e, "manifest list entry") for e in entries])
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError('invalid manifest: "layers" is not a list')
    config = _descriptor(doc.get("config"), "config")
    return ImageManifest(media_type, config, [_descriptor(layer, "layer") for layer in layers])


def _kind(doc: Mapping[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None:
        if not isinstance(declared, str):
            raise ManifestError("invalid manifest: mediaType is not a string")
        if declared:
            return declared
    header = (content_type or "").split(";", 1)[0].strip().lower()
    if header not in _GENERIC_CONTENT_TYPES:
        return header
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    raise ManifestError("invalid manifest: no mediaType, and neither manifests nor config and layers")


def _descriptor(value: object, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestError(f"invalid manifest: {what} is not a JSON object")
    media_type = value.get("mediaType", "")
    digest, size = value.get("digest"), value.get("size")
    urls, platform = value.get("urls") or [], value.get("platform")
    annotations = value.get("annotations") or {}
    if not isinstance(media_type, str):
        raise ManifestError(f"invalid manifest: {what} mediaType is not a string")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ManifestError(f"invalid manifest: {what} digest {digest!r} is not sha256:<64 lowercase hex>")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"invalid manifest: {what} {digest} has an invalid size {size!r}")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestError(f"invalid manifest: {what} {digest} urls is not a list of strings")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestError(f"invalid manifest: {what} {digest} platform is not a JSON object")
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise ManifestError(f"invalid manifest: {what} {digest} annotations are not strings")
    return Descriptor(media_type, digest, size, tuple(urls), platform, annotations)


def is_supported_media_type(media_type: str) -> bool:
    """dockerd 20.10's gate for config and layer types (lowercased; exact or prefix + ".")."""
    lower = media_type.lower()
    return any(lower == t or lower.startswith(t + ".") for t in _SUPPORTED_MEDIA_TYPES)


def check_media_types(manifest: ImageManifest) -> None:
    """Refuse what dockerd 20.10 refuses to pull: artifacts and other non-image content."""
    config = manifest.config
    if manifest.media_type == DOCKER_MANIFEST and config.media_type not in _SCHEMA2_CONFIG_TYPES:
        raise ManifestError(
            f'refusing config media type "{config.media_type}": not a container image config '
            "(is this an artifact, plugin or other non-image content?)"
        )
    for what, desc in [("config", config)] + [("layer", layer) for layer in manifest.layers]:
        if not is_supported_media_type(desc.media_type):
            raise ManifestError(
                f'unsupported media type "{desc.media_type}" for {what} {desc.digest}: '
                "not a container image (is this an artifact?)"
            )


def select_platform(index: ImageIndex, platform: Platform) -> Descriptor:
    """The index entry for `platform`: exact match first, then compatible; list order breaks ties."""
    found = best_match(platform, [entry.platform for entry in index.manifests])
    if found is None:
        raise ManifestError(f"no matching manifest for {platform} in the manifest list entries")
    return index.manifests[found]
