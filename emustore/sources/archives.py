"""Which kind of archive or layout a path holds, and `--from TRANSPORT:PATH` source names."""

from __future__ import annotations

import os
from dataclasses import dataclass

from emustore.errors import ManifestError
from emustore.platform import Platform
from emustore.reference import Reference
from emustore.formats.docker_archive import MANIFEST_JSON, DockerArchive, DockerArchiveImage
from emustore.sources.files import Files, open_files
from emustore.formats.oci import INDEX_JSON, OciLayout, OciLayoutImage

ArchivedImage = DockerArchiveImage | OciLayoutImage
DOCKER_ARCHIVE, OCI_LAYOUT, OCI_ARCHIVE = "docker-archive", "oci-layout", "oci-archive"
TRANSPORTS = (DOCKER_ARCHIVE, OCI_LAYOUT, OCI_ARCHIVE)


def archive_images(files: Files, platform: Platform | None = None, kind: str | None = None) -> list[ArchivedImage]:
    """The images of `files`: read as `kind`, or as docker load would (manifest.json, else index.json)."""
    if kind == DOCKER_ARCHIVE or (kind is None and files.exists(MANIFEST_JSON)):
        return list(DockerArchive(files).images())
    if kind in (OCI_LAYOUT, OCI_ARCHIVE) or files.exists(INDEX_JSON):
        return list(OciLayout(files, platform).images())
    raise ManifestError(f"{files.label}: neither manifest.json nor index.json: not an image archive")


@dataclass(frozen=True)
class SourceName:
    """`TRANSPORT:PATH` as given to `pull --from`."""

    transport: str
    path: str

    def open(self) -> Files:
        is_dir = os.path.isdir(self.path)
        if self.transport == OCI_LAYOUT and not is_dir:
            raise ManifestError(f"oci-layout:{self.path}: not a directory (use oci-archive: for a tar)")
        if self.transport != OCI_LAYOUT and is_dir:
            raise ManifestError(f"{self.transport}:{self.path}: a directory (use oci-layout: for one)")
        return open_files(self.path)


def parse_source_name(text: str) -> SourceName:
    transport, colon, path = text.partition(":")
    if not colon or transport not in TRANSPORTS or not path:
        raise ManifestError(f"invalid source {text!r}: expected one of {', '.join(t + ':PATH' for t in TRANSPORTS)}")
    return SourceName(transport, path)


def pick_image(images: list[ArchivedImage], ref: Reference, label: str) -> ArchivedImage:
    """The image tagged `ref`, or the only image there is."""
    for image in images:
        if any(tag.full_string() == ref.full_string() for tag in image.tags):
            return image
    if len(images) == 1:
        return images[0]
    names = ", ".join(str(tag) for image in images for tag in image.tags) or "none"
    raise ManifestError(f"{label}: no image tagged {ref} among {len(images)} images (tags: {names})")
