"""The registry source: resolve a reference to one image (manifest, config, layers) and stream its layers."""

from __future__ import annotations

import contextlib
import json

from emustore.errors import ManifestError
from emustore.manifest import Descriptor, ImageIndex, ImageManifest, check_media_types, parse_manifest, select_platform
from emustore.platform import Platform, host_platform
from emustore.reference import Reference
from emustore.registry.client import BlobStream, RegistryClient
from emustore.sources.base import ResolvedImage

MAX_CONFIG_SIZE = 8 << 20


class RegistrySource:
    """Images of one reference in a registry; closes the client only if it created it."""

    def __init__(self, ref: Reference, platform: Platform | None = None, client: RegistryClient | None = None) -> None:
        if ref.tag is None and ref.digest is None:
            raise ValueError(f"reference {ref} needs a tag or a digest to be pulled")
        self.ref = ref
        self.platform = platform or host_platform()
        self._owns_client = client is None
        self.client = client or RegistryClient.for_reference(ref)

    def resolve(self) -> ResolvedImage:
        """Fetch the manifest (through the index for this platform), check it, and fetch the config."""
        path = self.ref.path
        data, content_type, top_digest = self.client.get_manifest(path, self.ref.digest or self.ref.tag or "")
        parsed = parse_manifest(data, content_type)
        if isinstance(parsed, ImageIndex):
            entry = select_platform(parsed, self.platform)
            data, content_type, _ = self.client.get_manifest(path, entry.digest)
            parsed = parse_manifest(data, content_type)
            if isinstance(parsed, ImageIndex):
                raise ManifestError(f"manifest list entry {entry.digest} of {self.ref} is itself a manifest list")
        check_media_types(parsed)
        config = parsed.config
        if config.size > MAX_CONFIG_SIZE:
            raise ManifestError(
                f"image config {config.digest} of {self.ref} is larger than the {MAX_CONFIG_SIZE}-byte limit; "
                "refusing it"
            )
        config_bytes = self.client.fetch_blob(path, config.digest, MAX_CONFIG_SIZE)
        _check_config(config_bytes, config.digest)
        return ResolvedImage(
            reference=self.ref,
            repository=self.ref.name,
            manifest_digest=top_digest,
            manifest=parsed,
            manifest_bytes=data,
            config_bytes=config_bytes,
            config_digest=config.digest,
            layers=list(parsed.layers),
        )

    def open_layer(self, desc: Descriptor) -> contextlib.AbstractContextManager[BlobStream]:
        """Stream one layer blob; the caller verifies its digest while reading."""
        return self.client.open_blob(self.ref.path, desc.digest)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_config(data: bytes, digest: str) -> None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"invalid image config {digest}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"invalid image config {digest}: not a JSON object")
