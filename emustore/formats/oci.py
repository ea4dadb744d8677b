"""OCI image layouts (a directory or a tar of one), read and written: index.json + blobs/sha256.

Written (write_oci_archive) as `emustore save --format oci`: the layout plus a manifest.json that
`docker load` reads; read (OciLayout, an image source) as below.

Every top-level entry of index.json is one image (a manifest, or an index resolved for the
platform); its names come from the `io.containerd.image.name` annotation (a full reference) or
from `org.opencontainers.image.ref.name` when that holds a full reference (a bare tag names no
repository).
"""

from __future__ import annotations

import contextlib
import time

from emustore.digest import Digest, hex_of
from emustore.errors import DigestMismatch, InvalidReference, ManifestError
from emustore.formats.archive import ArchiveImage, ArchiveLayer, ArchiveWriter
from emustore.formats.docker_archive import MAX_JSON_SIZE, read_json, untagged_reference
from emustore.gojson import go_json
from emustore.manifest import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    check_media_types,
    parse_manifest,
    select_platform,
)
from emustore.platform import Platform, host_platform
from emustore.reference import Reference, parse_reference
from emustore.sources.base import ResolvedImage
from emustore.sources.files import FileStream, Files

INDEX_JSON = "index.json"
OCI_LAYOUT_FILE = "oci-layout"
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"


def blob_name(digest: str) -> str:
    return "blobs/sha256/" + hex_of(digest)


def read_blob(files: Files, digest: str, limit: int = MAX_JSON_SIZE) -> bytes:
    """A small blob (manifest, index, config), checked against its digest."""
    data = files.read(blob_name(digest), limit)
    actual = Digest.of_bytes(data)
    if actual != digest:
        raise DigestMismatch(f"{files.label}: blob {digest} does not match its digest (got {actual})")
    return data


class OciLayout:
    """The images of an OCI layout, in index.json order."""

    def __init__(self, files: Files, platform: Platform | None = None) -> None:
        self.files = files
        if not files.exists(INDEX_JSON):
            raise ManifestError(f"{files.label}: no index.json: not an OCI image layout")
        read_json(files, INDEX_JSON)  # a clear message for broken JSON before the model's checks
        top = parse_manifest(files.read(INDEX_JSON, MAX_JSON_SIZE), None)
        if not isinstance(top, ImageIndex):
            raise ManifestError(f"{files.label}: index.json is not an image index")
        self.platform = platform or host_platform()
        self._images = [OciLayoutImage(self, entry) for entry in top.manifests]

    def images(self) -> list[OciLayoutImage]:
        return self._images


class OciLayoutImage:
    """One index.json entry: an ImageSource over the layout's blobs."""

    def __init__(self, layout: OciLayout, entry: Descriptor) -> None:
        self.layout = layout
        self.entry = entry
        self._resolved: ResolvedImage | None = None
        self.parent: str | None = None
        self.tags = tuple(tag for tag in (_tag(entry.annotations.get(k)) for k in (CONTAINERD_NAME, OCI_REF_NAME)) if tag)[:1]

    def resolve(self) -> ResolvedImage:
        """Resolved once; later calls give the same image."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> ResolvedImage:
        files = self.layout.files
        data = read_blob(files, self.entry.digest)
        parsed = parse_manifest(data, self.entry.media_type)
        if isinstance(parsed, ImageIndex):
            chosen = select_platform(parsed, self.layout.platform)
            data = read_blob(files, chosen.digest)
            parsed = parse_manifest(data, chosen.media_type)
            if isinstance(parsed, ImageIndex):
                raise ManifestError(f"{files.label}: index entry {chosen.digest} is itself an index")
        check_media_types(parsed)
        config_bytes = read_blob(files, parsed.config.digest)
        for layer in parsed.layers:
            if not files.exists(blob_name(layer.digest)):
                raise ManifestError(f"{files.label}: layer blob {layer.digest} is missing")
        return ResolvedImage(
            reference=self.tags[0] if self.tags else untagged_reference(parsed.config.digest),
            repository="",
            manifest_digest=self.entry.digest,
            manifest=parsed,
            manifest_bytes=data,
            config_bytes=config_bytes,
            config_digest=parsed.config.digest,
            layers=list(parsed.layers),
        )

    def open_layer(self, desc: Descriptor) -> contextlib.AbstractContextManager[FileStream]:
        """The blob as stored; the pipeline checks its digest while reading."""
        return self.layout.files.open(blob_name(desc.digest))

    def close(self) -> None:
        """The layout is closed by whoever opened it."""


def _tag(value: str | None) -> Reference | None:
    """A full reference with a tag, else None (bare tags like "v1" name no repository)."""
    if not value or (":" not in value and "/" not in value):
        return None
    try:
        ref = parse_reference(value, default_tag=False)
    except InvalidReference:
        return None
    return ref if ref.tag is not None and ref.digest is None else None


def write_oci_archive(images: list[ArchiveImage], writer: ArchiveWriter) -> None:
    """An OCI image layout (oci-layout, index.json, blobs/sha256) plus a docker-loadable manifest.json."""
    blobs: dict[str, bytes | ArchiveLayer] = {}
    index_entries = []
    manifest = []
    for saved in images:
        config_bytes, layers = saved.config_bytes, saved.layers
        blobs[saved.image_id] = config_bytes
        for layer in layers:
            blobs.setdefault(layer.diff_id, layer)
        oci_manifest = go_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": saved.image_id, "size": len(config_bytes)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer.diff_id, "size": layer.size} for layer in layers],
            }
        ).encode()
        manifest_digest = Digest.of_bytes(oci_manifest)
        blobs[manifest_digest] = oci_manifest
        entry = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(oci_manifest)}
        tags: list[Reference | None] = list(saved.tags) or [None]
        for tag in tags:
            annotated = dict(entry)
            if tag is not None:
                annotated["annotations"] = {
                    "io.containerd.image.name": tag.full_string(),
                    "org.opencontainers.image.ref.name": tag.tag or "",
                }
            index_entries.append(annotated)
        manifest.append(
            {
                "Config": "blobs/sha256/" + hex_of(saved.image_id),
                "RepoTags": [str(t) for t in saved.tags] or None,
                "Layers": ["blobs/sha256/" + hex_of(layer.diff_id) for layer in layers],
            }
        )
    now = time.time()
    writer.directory("blobs", now)
    writer.directory("blobs/sha256", now)
    for digest in sorted(blobs):
        blob = blobs[digest]
        name = "blobs/sha256/" + hex_of(digest)
        if isinstance(blob, bytes):
            writer.file(name, blob, now)
        else:
            writer.stream(name, blob.size, blob.chunks(), now)
    writer.file("index.json", go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}).encode(), now)
    writer.file("manifest.json", go_json(manifest).encode(), now)
    writer.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', now)
