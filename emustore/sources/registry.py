"""The registry source: resolve a reference to one image (manifest, config, layers) and stream its layers."""

from __future__ import annotations

from collections.abc import Sequence

import contextlib
from typing import Protocol

from emustore import safejson
from emustore.errors import ManifestError
from emustore.manifest import Descriptor, ImageIndex, check_media_types, parse_manifest, select_platform
from emustore.platform import Platform, host_platform
from emustore.reference import Reference
from emustore.registry.client import BlobStream, RegistryClient
from emustore.registry.endpoints import first_working
from emustore.registry.options import RegistryOptions
from emustore.sources.base import ResolvedImage

MAX_CONFIG_SIZE = 8 << 20


class ConfigStore(Protocol):
    def get(self, digest: str) -> bytes | None: ...


class RegistrySource:
    """Images of one reference in a registry; closes the client only if it created it.

    Without a `client`, endpoints are tried in dockerd's order (mirrors for docker.io, then the
    origin; an insecure origin over unverified HTTPS, then HTTP) until one resolves the image;
    its layers then come from that endpoint. The repository recorded stays the original name.
    `config_stores` (the root's image store, a blob cache) are asked for the config before it is
    downloaded, in order. With `every_manifest`, every other manifest of an index and its config are
    fetched too (containerd 2.x keeps them), verified and bounded like the image's own.
    """

    def __init__(
        self,
        ref: Reference,
        platform: Platform | None = None,
        client: RegistryClient | None = None,
        options: RegistryOptions | None = None,
        config_stores: Sequence[ConfigStore] = (),
        every_manifest: bool = False,
    ) -> None:
        if ref.tag is None and ref.digest is None:
            raise ValueError(f"reference {ref} needs a tag or a digest to be pulled")
        self.ref = ref
        self.config_stores = list(config_stores)
        self.every_manifest = every_manifest
        self.platform = platform or host_platform()
        self.options = options or RegistryOptions()
        self._owns_client = client is None
        self.client: RegistryClient | None = client

    def resolve(self) -> ResolvedImage:
        """Fetch the manifest (through the index for this platform), check it, and fetch the config."""
        if self.client is not None:
            return self._resolve(self.client)
        self.client, image = first_working(self.ref, self.options, self._resolve)
        return image

    def _resolve(self, client: RegistryClient) -> ResolvedImage:
        path = self.ref.path
        data, content_type, top_digest = client.get_manifest(path, self.ref.digest or self.ref.tag or "")
        parsed = parse_manifest(data, content_type)
        index: tuple[bytes, str] | None = None
        others: list[tuple[str, bytes]] = []
        if isinstance(parsed, ImageIndex):
            index = (data, parsed.media_type)
            entry = select_platform(parsed, self.platform)
            if self.every_manifest:
                others = self._other_manifests(client, parsed, entry.digest)
            data, content_type, _ = client.get_manifest(path, entry.digest)
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
        stored = next((found for store in self.config_stores if (found := store.get(config.digest)) is not None), None)
        config_bytes = stored if stored is not None else client.fetch_blob(path, config.digest, MAX_CONFIG_SIZE)
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
            index_bytes=index[0] if index is not None else None,
            index_media_type=index[1] if index is not None else None,
            other_blobs=tuple(others),
        )

    def _other_manifests(self, client: RegistryClient, index: ImageIndex, chosen: str) -> list[tuple[str, bytes]]:
        """(digest, bytes) of each other manifest of `index` and of its config (a nested index: itself only)."""
        found: list[tuple[str, bytes]] = []
        for entry in index.manifests:
            if entry.digest == chosen or any(digest == entry.digest for digest, _ in found):
                continue
            data, content_type, _ = client.get_manifest(self.ref.path, entry.digest)
            found.append((entry.digest, data))
            parsed = parse_manifest(data, content_type or entry.media_type)
            if isinstance(parsed, ImageIndex):
                continue
            config = parsed.config
            if config.size > MAX_CONFIG_SIZE:
                raise ManifestError(f"image config {config.digest} of {self.ref} is larger than the {MAX_CONFIG_SIZE}-byte limit")
            if not any(digest == config.digest for digest, _ in found):
                found.append((config.digest, client.fetch_blob(self.ref.path, config.digest, MAX_CONFIG_SIZE)))
        return found

    def open_layer(self, desc: Descriptor) -> contextlib.AbstractContextManager[BlobStream]:
        """Stream one layer blob by digest (foreign `urls` are ignored, as dockerd 20.10 does on Linux)."""
        if self.client is None:
            raise RuntimeError("resolve() must succeed before layers are opened")
        return self.client.open_blob(self.ref.path, desc.digest)

    def close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_config(data: bytes, digest: str) -> None:
    try:
        doc = safejson.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"invalid image config {digest}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"invalid image config {digest}: not a JSON object")
