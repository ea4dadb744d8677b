"""`docker save`: images of a data root written as a docker-archive (or an OCI layout archive).

Each layer tar is reassembled from its tar-split.json.gz and diff dir, so its bytes (and sha256,
checked against the diff id while writing) are those the layer was pulled with, as dockerd's
own `docker save` gives them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import posixpath
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from emustore.digest import PREFIX, Digest, Hasher, hex_of
from emustore.errors import InvalidReference, LayerError, NoSuchImage, StoreError
from emustore.gojson import go_json, sorted_map
from emustore.imageconfig import parse_image_config
from emustore.layers.assemble import assemble, tar_split_entries
from emustore.manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from emustore.reference import Reference, parse_reference
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.references import lookup
from emustore.stores.docker.store import DockerStore

DOCKER, OCI = "docker", "oci"
BLOCK = 512
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
_HEX = frozenset("0123456789abcdef")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|z|[+-]\d\d:\d\d)")


@dataclass
class SavedImage:
    """One image to write, with the tags that name it in the archive (first-seen order)."""

    image_id: str
    tags: list[Reference] = field(default_factory=list)


def find_images(store: DockerStore, names: list[str]) -> list[SavedImage]:
    """Resolve `docker save` arguments: name:tag, name (every tag of it), name@digest, image id or prefix."""
    found: dict[str, SavedImage] = {}
    repos = store.references.load()

    def add(image_id: str, tag: Reference | None) -> None:
        if store.images.get(image_id) is None:
            raise NoSuchImage(image_id)
        saved = found.setdefault(image_id, SavedImage(image_id))
        if tag is not None and tag not in saved.tags:
            saved.tags.append(tag)

    for name in names:
        try:
            ref = parse_reference(name, default_tag=False)
        except InvalidReference:
            add(_image_id(store, name), None)
            continue
        keys = repos.get(ref.familiar_name, {})
        if ref.familiar_name == "sha256" or (ref.tag is None and ref.digest is None and not keys):
            add(_image_id(store, name), None)
            continue
        if ref.tag is None and ref.digest is None:  # every reference of the repository
            for key in sorted(keys):
                add(keys[key], None if "@" in key else parse_reference(key))
            continue
        image_id = lookup(repos, ref)
        if image_id is None:
            raise NoSuchImage(name)
        add(image_id, None if ref.digest else ref)
    return list(found.values())


def _image_id(store: DockerStore, text: str) -> str:
    """An image id from a full id or a unique hex prefix."""
    prefix = text.removeprefix("sha256:")
    if not prefix or not set(prefix) <= _HEX:
        raise NoSuchImage(text)
    try:
        names = [p.name for p in store.layout.imagedb_content.iterdir() if p.name.startswith(prefix)]
    except FileNotFoundError:
        names = []
    if len(names) != 1:
        raise NoSuchImage(text) if not names else StoreError(f"ambiguous image id prefix: {text}")
    return PREFIX + names[0]


@dataclass(frozen=True)
class _Layer:
    chain_id: str
    diff_id: str
    tar_split: Path
    diff_dir: Path

    @property
    def size(self) -> int:
        """The reassembled tar's length: raw segments plus file contents."""
        total = 0
        for entry in tar_split_entries(self.tar_split):
            if entry.get("type") == 2:
                total += len(base64.b64decode(str(entry.get("payload") or "")))
            else:
                total += int(entry.get("size") or 0)
        return total

    def chunks(self) -> Iterator[bytes]:
        """The layer tar, verified against the diff id at its end."""
        hasher = Hasher()
        for chunk in assemble(self.tar_split, self.diff_dir):
            hasher.update(chunk)
            yield chunk
        actual = hasher.digest()
        if actual != self.diff_id:
            raise LayerError(f"layer {self.chain_id} reassembles to {actual}, not its diff id {self.diff_id}")


def _layers(store: DockerStore, diff_ids: list[str]) -> list[_Layer]:
    layers = []
    for chain_id, diff_id in zip(chain_ids(diff_ids), diff_ids):
        record = store.layers.load(chain_id)
        if record is None:
            raise StoreError(f"layer {chain_id} of the image is missing from the root or unreadable")
        tar_split = store.layers.path(chain_id) / "tar-split.json.gz"
        if not tar_split.is_file():
            raise StoreError(f"layer {chain_id} has no tar-split.json.gz: its tar cannot be reassembled")
        layers.append(_Layer(chain_id, diff_id, tar_split, store.overlay2.diff_dir(record.cache_id)))
    return layers


class _ArchiveWriter:
    """USTAR members as Go's archive/tar writes docker save's: root-owned, type bits in the mode
    field, device fields filled, and two zero blocks at the end (no record padding)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def _header(self, name: str, mode: int, kind: bytes, mtime: float, size: int = 0, link: str = "") -> None:
        if len(name) > 100 or len(link) > 100:
            raise StoreError(f"archive name too long: {name}")
        fields = [
            name.encode().ljust(100, b"\0"),
            b"%07o\0" % mode, b"%07o\0" % 0, b"%07o\0" % 0,
            b"%011o\0" % size, b"%011o\0" % int(mtime),
            b" " * 8, kind, link.encode().ljust(100, b"\0"),
            b"ustar\x0000", b"root".ljust(32, b"\0"), b"root".ljust(32, b"\0"),
            b"%07o\0" % 0, b"%07o\0" % 0,
        ]
        header = bytearray(b"".join(fields).ljust(BLOCK, b"\0"))
        header[148:156] = b"%06o\0 " % sum(header)
        self.out.write(header)

    def _pad(self, size: int) -> None:
        self.out.write(b"\0" * (-size % BLOCK))

    def directory(self, name: str, mtime: float) -> None:
        self._header(name + "/", 0o40755, b"5", mtime)

    def file(self, name: str, data: bytes, mtime: float) -> None:
        self._header(name, 0o100644, b"0", mtime, len(data))
        self.out.write(data)
        self._pad(len(data))

    def stream(self, name: str, size: int, chunks: Iterator[bytes], mtime: float) -> None:
        self._header(name, 0o100644, b"0", mtime, size)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            self.out.write(chunk)
        if written != size:
            raise LayerError(f"{name}: reassembled {written} bytes, its tar-split announces {size}")
        self._pad(size)

    def symlink(self, name: str, target: str, mtime: float) -> None:
        self._header(name, 0o120777, b"2", mtime, link=target)

    def close(self) -> None:
        self.out.write(b"\0" * (2 * BLOCK))


def save(root: str | os.PathLike[str], names: list[str], out: IO[bytes], fmt: str = DOCKER) -> list[SavedImage]:
    """Write the images `names` resolve to in `root` to `out` as one archive."""
    store = DockerStore(Path(root))
    images = find_images(store, names)
    writer = _ArchiveWriter(out)
    if fmt == OCI:
        _write_oci(store, images, writer)
    else:
        _write_docker(store, images, writer)
    writer.close()
    return images


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


def _write_docker(store: DockerStore, images: list[SavedImage], writer: _ArchiveWriter) -> None:
    """<v1-id>/{VERSION,json,layer.tar}, <config-hex>.json, manifest.json, repositories; lexical order."""
    members: dict[str, tuple[str, Any]] = {}  # path → (kind, payload)
    layer_of: dict[str, str] = {}  # diff id → path of the layer.tar holding it
    manifest = []
    repositories: dict[str, dict[str, str]] = {}
    for saved in images:
        config_bytes = store.images.get(saved.image_id)
        assert config_bytes is not None
        config = _json_object(config_bytes)
        created = _created(config)
        diff_ids = parse_image_config(config_bytes).diff_ids
        parent: str | None = None
        paths = []
        layers = _layers(store, diff_ids)
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
        image_parent = store.images.parent(saved.image_id)
        if image_parent:
            entry["Parent"] = image_parent
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


def _write_oci(store: DockerStore, images: list[SavedImage], writer: _ArchiveWriter) -> None:
    """An OCI image layout (oci-layout, index.json, blobs/sha256) plus a docker-loadable manifest.json."""
    blobs: dict[str, Any] = {}  # digest → bytes or _Layer
    index_entries = []
    manifest = []
    for saved in images:
        config_bytes = store.images.get(saved.image_id)
        assert config_bytes is not None
        layers = _layers(store, parse_image_config(config_bytes).diff_ids)
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
        for tag in saved.tags or [None]:
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
        if isinstance(blob, _Layer):
            writer.stream(name, blob.size, blob.chunks(), now)
        else:
            writer.file(name, blob, now)
    writer.file("index.json", go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}).encode(), now)
    writer.file("manifest.json", go_json(manifest).encode(), now)
    writer.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', now)


def _json_object(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise StoreError("image config is not a JSON object")
    return doc


def save_to_path(root: str | os.PathLike[str], names: list[str], path: str | os.PathLike[str], fmt: str = DOCKER) -> list[SavedImage]:
    """save() into a file, published by rename only when complete."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as out:
            images = save(root, names, out, fmt)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return images
