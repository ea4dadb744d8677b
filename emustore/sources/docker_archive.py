"""`docker save` archives as image sources: manifest.json + <config>.json + one tar per layer.

Both the 20.10 layout (`<v1-id>/layer.tar`) and the OCI-style one newer dockers write
(`blobs/sha256/<hex>`, with manifest.json beside index.json) are read through manifest.json,
the way dockerd 20.10's `docker load` reads them.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from emustore import safejson
from emustore.digest import Digest, is_digest
from emustore.errors import InvalidReference, ManifestError
from emustore.gojson import go_json
from emustore.imageconfig import parse_image_config
from emustore.layers.compression import PLAIN, sniff
from emustore.manifest import DOCKER_CONFIG, DOCKER_MANIFEST, Descriptor, ImageManifest
from emustore.reference import Reference, parse_reference
from emustore.sources.base import ResolvedImage
from emustore.sources.files import FileStream, Files

MANIFEST_JSON = "manifest.json"
MAX_JSON_SIZE = 8 << 20
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
_BLOB_PATH = re.compile(r"(?:\./)?blobs/sha256/([0-9a-f]{64})")


def read_json(files: Files, name: str) -> Any:
    """A JSON document of the archive; a clear error when it is not one."""
    try:
        return safejson.loads(files.read(name, MAX_JSON_SIZE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{files.label}: {name} is not valid JSON ({exc})") from None


def untagged_reference(image_id: str) -> Reference:
    """Names an image that has no tag, for messages only (it is never registered)."""
    return Reference(domain="", path=image_id)


class DockerArchive:
    """The images of a `docker save` archive, in manifest.json order."""

    def __init__(self, files: Files) -> None:
        self.files = files
        if not files.exists(MANIFEST_JSON):
            raise ManifestError(
                f"{files.label}: no manifest.json: not a docker-archive (pre-1.10 archives are not supported)"
            )
        entries = read_json(files, MANIFEST_JSON)
        if not isinstance(entries, list):
            raise ManifestError(f"{files.label}: manifest.json is not a list")
        self._images = [DockerArchiveImage(files, entry) for entry in entries]

    def images(self) -> list[DockerArchiveImage]:
        return self._images


class DockerArchiveImage:
    """One manifest.json entry: an ImageSource whose layers are archive members."""

    def __init__(self, files: Files, entry: object) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ManifestError(f"{files.label}: manifest.json entry without a Config file")
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
            raise ManifestError(f"{files.label}: manifest.json entry {entry['Config']} has no list of Layers")
        self.files = files
        self.config_name: str = entry["Config"]
        self.layer_names: list[str] = layers
        self.tags = tuple(_parse_tag(files.label, tag) for tag in entry.get("RepoTags") or [])
        parent = entry.get("Parent") or None
        if parent is not None and (not is_digest(parent)):
            raise ManifestError(f"{files.label}: invalid Parent {parent!r} in manifest.json")
        self.parent: str | None = parent
        self._paths: dict[str, str] = {}
        self._resolved: ResolvedImage | None = None

    def resolve(self) -> ResolvedImage:
        """Resolved once; later calls give the same image."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> ResolvedImage:
        """Read the config; a layer's digest is its blob name, else its diff id when it is a plain tar."""
        config_bytes = self.files.read(self.config_name, MAX_JSON_SIZE)
        config_digest = Digest.of_bytes(config_bytes)
        diff_ids = parse_image_config(config_bytes).diff_ids
        if len(diff_ids) != len(self.layer_names):
            raise ManifestError(
                f"{self.files.label}: invalid manifest, layers length mismatch: expected "
                f"{len(self.layer_names)}, got {len(diff_ids)}"
            )
        layers = []
        for name, diff_id in zip(self.layer_names, diff_ids):
            digest = self._digest(name, str(diff_id))
            self._paths[digest] = name
            layers.append(Descriptor(DOCKER_LAYER_TAR, digest, self.files.size(name)))
        config = Descriptor(DOCKER_CONFIG, config_digest, len(config_bytes))
        manifest = ImageManifest(DOCKER_MANIFEST, config, layers)
        manifest_bytes = go_json(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": config.media_type, "size": config.size, "digest": config.digest},
                "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in layers],
            }
        ).encode()
        return ResolvedImage(
            reference=self.tags[0] if self.tags else untagged_reference(config_digest),
            repository="",
            manifest_digest=Digest.of_bytes(manifest_bytes),
            manifest=manifest,
            manifest_bytes=manifest_bytes,
            config_bytes=config_bytes,
            config_digest=config_digest,
            layers=layers,
        )

    def _digest(self, name: str, diff_id: str) -> str:
        named = _BLOB_PATH.fullmatch(name)
        if named:
            return Digest.from_hex(named.group(1))
        if sniff(self.files.head(name)) == PLAIN:
            return diff_id
        with self.files.open(name) as stream:
            return Digest.of_chunks(stream.iter_chunks())

    def open_layer(self, desc: Descriptor) -> contextlib.AbstractContextManager[FileStream]:
        return self.files.open(self._paths[desc.digest])

    def close(self) -> None:
        """The archive is closed by whoever opened it."""


def _parse_tag(label: str, text: object) -> Reference:
    """A RepoTags entry: a reference with a tag (docker load refuses anything else)."""
    if not isinstance(text, str):
        raise ManifestError(f"{label}: invalid tag {text!r} in manifest.json")
    try:
        ref = parse_reference(text, default_tag=False)
    except InvalidReference as exc:
        raise ManifestError(f"{label}: invalid tag {text!r} in manifest.json: {exc}") from None
    if ref.tag is None or ref.digest is not None:
        raise ManifestError(f"{label}: invalid tag {text!r} in manifest.json")
    return ref
