"""Deterministic image, manifest and index builders that push themselves to a test registry."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import zstandard

from tests.support.pushclient import PushClient, sha256_digest
from tests.support.tarlayer import LayerBuilder

Compression = Literal["gzip", "zstd", "none"]
Format = Literal["docker", "oci"]
CREATED = "2023-11-14T22:13:20Z"
DEFAULT_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
DEFAULT_CMD = ("sh",)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES: dict[tuple[Format, Compression], str] = {
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
}


def compress(data: bytes, compression: Compression) -> bytes:
    """gzip with mtime 0, zstd level 3, or the bytes unchanged: same input, same blob."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(data), "digest": sha256_digest(data), **extra}


@dataclass(frozen=True)
class Layer:
    """An uncompressed tar stream plus how it is shipped."""

    tar: bytes
    compression: Compression = "gzip"
    created_by: str = ""
    media_type: str | None = None  # override of the format's default type

    @cached_property
    def blob(self) -> bytes:
        return compress(self.tar, self.compression)

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)


@dataclass(frozen=True)
class EmptyHistory:
    """A history entry with `empty_layer: true` (ENV, CMD... steps)."""

    created_by: str


@dataclass(frozen=True)
class PushedImage:
    """What a push produced; `image_id`/`diff_ids`/`layer_digests` are the linux/amd64 image's."""

    repository: str  # host/name
    tag: str
    digest: str  # manifest or index digest the tag points at
    media_type: str
    image_id: str
    diff_ids: tuple[str, ...]
    layer_digests: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def digest_reference(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass
class ImageBuilder:
    """Layers + config + manifest (Docker schema 2 or OCI), all deterministic."""

    fmt: Format = "docker"
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    created: str = CREATED
    env: tuple[str, ...] = DEFAULT_ENV
    cmd: tuple[str, ...] = DEFAULT_CMD
    history: list[Layer | EmptyHistory] = field(default_factory=list)

    def layer(
        self,
        tar: bytes | LayerBuilder,
        *,
        compression: Compression = "gzip",
        created_by: str = "",
        media_type: str | None = None,
    ) -> ImageBuilder:
        stream = tar.build() if isinstance(tar, LayerBuilder) else tar
        if (self.fmt, compression) not in LAYER_TYPES and media_type is None:
            raise ValueError(f"no {self.fmt} media type for {compression} layers; use fmt='oci'")
        created_by = created_by or f"layer {len(self.layers) + 1}"
        self.history.append(Layer(stream, compression, created_by, media_type))
        return self

    def empty(self, created_by: str) -> ImageBuilder:
        self.history.append(EmptyHistory(created_by))
        return self

    def copy(self, **changes: Any) -> ImageBuilder:
        """An independent builder with the same layers so far (for images sharing a base)."""
        return replace(self, history=list(self.history), **changes)

    @property
    def layers(self) -> list[Layer]:
        return [item for item in self.history if isinstance(item, Layer)]

    @property
    def needs_gzip_twin(self) -> bool:
        """True when dockerd 20.10 cannot pull this image (zstd layers)."""
        return any(layer.compression == "zstd" for layer in self.layers)

    def gzip_twin(self) -> ImageBuilder:
        """Same config (same image id and diff ids) with zstd layers shipped as gzip."""
        history = [
            replace(item, compression="gzip", media_type=None)
            if isinstance(item, Layer) and item.compression == "zstd"
            else item
            for item in self.history
        ]
        return replace(self, history=history)

    @property
    def media_type(self) -> str:
        return DOCKER_MANIFEST if self.fmt == "docker" else OCI_MANIFEST

    def config_bytes(self) -> bytes:
        history = []
        for item in self.history:
            entry: dict[str, Any] = {"created": self.created, "created_by": item.created_by}
            if isinstance(item, EmptyHistory):
                entry["empty_layer"] = True
            history.append(entry)
        config: dict[str, Any] = {
            "architecture": self.architecture,
            "config": {"Cmd": list(self.cmd), "Env": list(self.env)},
            "created": self.created,
            "history": history,
            "os": self.os,
            "rootfs": {"diff_ids": [layer.diff_id for layer in self.layers], "type": "layers"},
        }
        if self.variant:
            config["variant"] = self.variant
        return canonical_json(config)

    def manifest_bytes(self) -> bytes:
        config_type = DOCKER_CONFIG if self.fmt == "docker" else OCI_CONFIG
        manifest = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": descriptor(config_type, self.config_bytes()),
            "layers": [
                descriptor(layer.media_type or LAYER_TYPES[self.fmt, layer.compression], layer.blob)
                for layer in self.layers
            ],
        }
        return canonical_json(manifest)

    def push_blobs_and_manifest(self, client: PushClient, name: str, reference: str) -> str:
        for blob in [self.config_bytes(), *(layer.blob for layer in self.layers)]:
            client.put_blob(name, blob)
        return client.put_manifest(name, reference, self.media_type, self.manifest_bytes())

    def pushed(self, repository: str, tag: str, digest: str, media_type: str) -> PushedImage:
        return PushedImage(
            repository=repository,
            tag=tag,
            digest=digest,
            media_type=media_type,
            image_id=sha256_digest(self.config_bytes()),
            diff_ids=tuple(layer.diff_id for layer in self.layers),
            layer_digests=tuple(layer.digest for layer in self.layers),
        )

    def push(self, registry_host: str, repository: str, tag: str) -> PushedImage:
        with PushClient(registry_host) as client:
            digest = self.push_blobs_and_manifest(client, repository, tag)
        return self.pushed(f"{registry_host}/{repository}", tag, digest, self.media_type)

    def write_docker_archive(self, path: Path, tag: str) -> None:
        """A `docker save`-style archive: config.json, l<N>/layer.tar (the blobs as pushed, which
        dockerd sniffs), manifest.json naming them under `tag`."""
        with tarfile.open(path, "w") as archive:

            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))

            add("config.json", self.config_bytes())
            for i, layer in enumerate(self.layers):
                add(f"l{i}/layer.tar", layer.blob)
            layers = [f"l{i}/layer.tar" for i in range(len(self.layers))]
            add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": layers}]).encode())


def platform_of(image: ImageBuilder) -> dict[str, str]:
    platform = {"architecture": image.architecture, "os": image.os}
    if image.variant:
        platform["variant"] = image.variant
    return platform


@dataclass
class IndexBuilder:
    """A Docker manifest list or an OCI index over several platform images.

    `attest` adds an `unknown/unknown` attestation manifest (BuildKit style, in-toto layer) for
    the image at that position; it comes after all platform entries."""

    fmt: Format = "docker"
    images: list[ImageBuilder] = field(default_factory=list)
    attest: int | None = None

    def add(self, image: ImageBuilder) -> IndexBuilder:
        if image.fmt != self.fmt:
            raise ValueError("index and platform manifests must use the same format")
        self.images.append(image)
        return self

    @property
    def media_type(self) -> str:
        return DOCKER_LIST if self.fmt == "docker" else OCI_INDEX

    @property
    def needs_gzip_twin(self) -> bool:
        return any(image.needs_gzip_twin for image in self.images)

    def gzip_twin(self) -> IndexBuilder:
        return replace(self, images=[image.gzip_twin() for image in self.images])

    def selected(self) -> ImageBuilder:
        """The image dockerd on linux/amd64 picks: the first linux/amd64 entry."""
        for image in self.images:
            if (image.os, image.architecture) == ("linux", "amd64"):
                return image
        raise ValueError("index has no linux/amd64 image")

    def attestation(self) -> tuple[bytes, bytes, bytes]:
        """(in-toto statement, config, manifest) bytes of the attestation manifest."""
        if self.attest is None:
            raise ValueError("no attestation requested")
        subject = self.images[self.attest].manifest_bytes()
        statement = canonical_json(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://spdx.dev/Document",
                "subject": [{"digest": {"sha256": sha256_digest(subject)[7:]}}],
                "predicate": {"spdxVersion": "SPDX-2.3"},
            }
        )
        config = canonical_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(statement)]},
            }
        )
        layer = descriptor(
            "application/vnd.in-toto+json",
            statement,
            annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
        )
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [layer],
            }
        )
        return statement, config, manifest

    def index_bytes(self) -> bytes:
        entries = [
            descriptor(image.media_type, image.manifest_bytes(), platform=platform_of(image))
            for image in self.images
        ]
        if self.attest is not None:
            subject = sha256_digest(self.images[self.attest].manifest_bytes())
            entries.append(
                descriptor(
                    OCI_MANIFEST,
                    self.attestation()[2],
                    annotations={
                        "vnd.docker.reference.digest": subject,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                    platform={"architecture": "unknown", "os": "unknown"},
                )
            )
        return canonical_json({"schemaVersion": 2, "mediaType": self.media_type, "manifests": entries})

    def push(self, registry_host: str, repository: str, tag: str) -> PushedImage:
        with PushClient(registry_host) as client:
            for image in self.images:
                image.push_blobs_and_manifest(client, repository, sha256_digest(image.manifest_bytes()))
            if self.attest is not None:
                statement, config, manifest = self.attestation()
                client.put_blob(repository, statement)
                client.put_blob(repository, config)
                client.put_manifest(repository, sha256_digest(manifest), OCI_MANIFEST, manifest)
            digest = client.put_manifest(repository, tag, self.media_type, self.index_bytes())
        return self.selected().pushed(f"{registry_host}/{repository}", tag, digest, self.media_type)


def twin_maps(original: PushedImage, twin: PushedImage) -> dict[str, dict[str, str]]:
    """Options for treecompare mapping the gzip twin's digests and repository onto the original's.

    Use as `diff_trees(original_root, twin_root, **twin_maps(original, twin))`."""
    if original.diff_ids != twin.diff_ids or original.image_id != twin.image_id:
        raise ValueError("not twins: image ids or diff ids differ")
    if twin.tag != original.tag:
        raise ValueError("push the twin under the same tag (in another repository)")
    blob_map = dict(zip(twin.layer_digests, original.layer_digests))
    blob_map[twin.digest] = original.digest
    name_map = {} if twin.repository == original.repository else {twin.repository: original.repository}
    return {"blob_map": blob_map, "name_map": name_map}
