"""`docker save` archives, read and written: manifest.json + <config>.json + one tar per layer.

Read: both the 20.10 layout (`<v1-id>/layer.tar`) and the OCI-style one newer dockers write
(`blobs/sha256/<hex>`, with manifest.json beside index.json) are read through manifest.json,
the way dockerd 20.10's `docker load` reads them (DockerArchive, an image source).
Written: as dockerd 20.10's `docker save` writes them (write_docker_archive), v1 ids and all.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import time
from datetime import datetime
from typing import Any

from emustore import safejson
from emustore.digest import Digest, hex_of, is_digest
from emustore.errors import InvalidReference, ManifestError, StoreError
from emustore.formats.archive import ArchiveImage, ArchiveWriter
from emustore.gojson import go_json, sorted_map
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


EPOCH_CREATED = "1970-01-01T00:00:00Z"
# The zero container.Config as Go marshals it: the `container_config` of every v1 layer json.
EMPTY_CONTAINER_CONFIG = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}  # fmt: skip
_V1_FIELDS = ("comment", "created", "container", "container_config", "docker_version", "author", "config", "architecture", "variant", "os")
# container.Config of API 1.41 in struct order: (name, zero value, omitempty).
_CONTAINER_CONFIG_FIELDS = (
    ("Hostname", "", False), ("Domainname", "", False), ("User", "", False), ("AttachStdin", False, False),
    ("AttachStdout", False, False), ("AttachStderr", False, False), ("ExposedPorts", None, True),
    ("Tty", False, False), ("OpenStdin", False, False), ("StdinOnce", False, False), ("Env", None, False),
    ("Cmd", None, False), ("Healthcheck", None, True), ("ArgsEscaped", False, True), ("Image", "", False),
    ("Volumes", None, False), ("WorkingDir", "", False), ("Entrypoint", None, False),
    ("NetworkDisabled", False, True), ("MacAddress", "", True), ("OnBuild", None, False), ("Labels", None, False),
    ("StopSignal", "", True), ("StopTimeout", None, True), ("Shell", None, True),
)  # fmt: skip
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|z|[+-]\d\d:\d\d)")


def _created(config: dict[str, Any]) -> float:
    """The config's `created` as a Unix time (whole seconds suffice for tar headers); 0 if absent."""
    match = _RFC3339.match(str(config.get("created") or ""))
    if match is None:
        return 0.0
    zone = "+00:00" if match.group(2) in ("Z", "z") else match.group(2)
    return datetime.fromisoformat(match.group(1) + zone).timestamp()


def _go_container_config(value: object) -> dict[str, Any]:
    """A container.Config (API 1.41) as Go re-marshals it after reading `value`: every field in
    struct order, zero values where absent, `omitempty` ones dropped when empty."""
    given = {k.lower(): v for k, v in value.items()} if isinstance(value, dict) else {}
    out: dict[str, Any] = {}
    for name, zero, omitempty in _CONTAINER_CONFIG_FIELDS:
        item = given.get(name.lower(), zero)
        if isinstance(item, str) and name in ("Cmd", "Entrypoint", "Shell"):
            item = [item]  # strslice accepts a bare string
        if isinstance(item, dict):
            item = sorted_map(item)
        if omitempty and not item:
            continue
        out[name] = item if item is not None or zero is None else zero
    return out


def _v1_id(chain_id: str, parent: str | None, top_config: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """docker save's legacy layer id and the v1 json it writes (image/v1 CreateID); the top
    layer carries the image's own v1 fields."""
    v1: dict[str, Any] = {"created": EPOCH_CREATED, "container_config": EMPTY_CONTAINER_CONFIG}
    if top_config is not None:
        v1 = {}
        for key in _V1_FIELDS:
            if key in ("container_config", "config"):
                if key == "container_config" or top_config.get(key) is not None:
                    v1[key] = _go_container_config(top_config.get(key))
            elif key == "created":
                v1[key] = top_config.get(key) or "0001-01-01T00:00:00Z"
            elif top_config.get(key):
                v1[key] = top_config[key]
    hashed = dict(v1, layer_id=chain_id)
    if parent:
        hashed["parent"] = "sha256:" + parent
    v1_id = Digest.of_bytes(go_json(sorted_map(hashed)).encode()).hex
    document: dict[str, Any] = {"id": v1_id}
    if parent:
        document["parent"] = parent
    document.update(v1)
    return v1_id, document


def write_docker_archive(images: list[ArchiveImage], writer: ArchiveWriter) -> None:
    """<v1-id>/{VERSION,json,layer.tar}, <config-hex>.json, manifest.json, repositories; lexical order."""
    members: dict[str, tuple[str, Any]] = {}  # path → (kind, payload)
    layer_of: dict[str, str] = {}  # diff id → path of the layer.tar holding it
    manifest = []
    repositories: dict[str, dict[str, str]] = {}
    for saved in images:
        config_bytes = saved.config_bytes
        config = _json_object(config_bytes)
        created = _created(config)
        parent: str | None = None
        paths = []
        layers = saved.layers
        for position, layer in enumerate(layers):
            top = config if position == len(layers) - 1 else None
            v1_id, document = _v1_id(layer.chain_id, parent, top)
            document.setdefault("os", config.get("os") or "linux")
            path = f"{v1_id}/layer.tar"
            if v1_id not in members:
                first = layer_of.setdefault(layer.diff_id, path)
                members[v1_id] = ("layer", (layer, document, created, None if first == path else first))
            paths.append(path)
            parent = v1_id
        members[hex_of(saved.image_id) + ".json"] = ("file", (config_bytes, created))
        entry = {"Config": hex_of(saved.image_id) + ".json", "RepoTags": [str(t) for t in saved.tags] or None, "Layers": paths}
        if saved.parent:
            entry["Parent"] = saved.parent
        manifest.append(entry)
        for tag in saved.tags:
            repositories.setdefault(tag.familiar_name, {})[tag.tag or ""] = parent or ""
    members["manifest.json"] = ("file", (go_json(manifest).encode() + b"\n", 0))
    if repositories:
        doc = sorted_map({name: sorted_map(tags) for name, tags in repositories.items()})
        members["repositories"] = ("file", (go_json(doc).encode() + b"\n", 0))
    for name in sorted(members):
        kind, payload = members[name]
        if kind == "file":
            writer.file(name, *payload)
            continue
        layer, document, created, first = payload
        if first is not None:
            created = time.time()  # dockerd sets the times only of dirs it wrote a layer.tar into
        writer.directory(name, created)
        writer.file(f"{name}/VERSION", b"1.0", created)
        writer.file(f"{name}/json", go_json(document).encode(), created)
        if first is None:
            writer.stream(f"{name}/layer.tar", layer.size, layer.chunks(), created)
        else:
            writer.symlink(f"{name}/layer.tar", posixpath.relpath(first, name), created)


def _json_object(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise StoreError("image config is not a JSON object")
    return doc
