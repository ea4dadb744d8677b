"""What `docker image inspect` prints for an image of a root (types.ImageInspect): 20.10's (API
1.41), 26's (1.45) or 28's (1.51), each engine's own API version (docs/container-format.md §9.3)."""

from __future__ import annotations

import json
import os
from typing import Any

from emustore.engines import DEFAULT, Dialect
from emustore.errors import StoreError
from emustore.stores.docker.catalog import Catalog, CatalogImage
from emustore.stores.docker.goconfig import ZERO_TIME, decode_container_config

# Fields that only a running daemon knows and emustore leaves out: none for an image of an
# overlay2 root; GraphDriver paths use the root's real path, as dockerd resolves symlinks.


def inspect_document(catalog: Catalog, image: CatalogImage, dialect: Dialect = DEFAULT) -> dict[str, Any]:
    """The ImageInspect object engine `dialect` prints, keys in its order."""
    decoded = image.decoded
    config = decoded.config_for(dialect)
    comment = decoded.comment or (decoded.history_comments[-1] if decoded.history_comments else "")
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": image.parent or "",
        "Comment": comment,
        "Created": decoded.created.text,
    }
    if dialect.legacy_image_fields:
        doc["Container"] = decoded.container
        doc["ContainerConfig"] = decoded.container_config
    doc["DockerVersion"] = decoded.docker_version
    doc["Author"] = decoded.author
    if not dialect.oci_image_config:
        doc["Config"] = config
    doc["Architecture"] = decoded.architecture
    if decoded.variant:
        doc["Variant"] = decoded.variant
    doc["Os"] = decoded.os
    if decoded.os_version:
        doc["OsVersion"] = decoded.os_version
    doc["Size"] = image.size
    if dialect.legacy_image_fields:
        doc["VirtualSize"] = image.size
    doc["GraphDriver"] = {"Data": graph_driver_data(catalog, image), "Name": "overlay2"}
    rootfs: dict[str, Any] = {"Type": decoded.rootfs_type}
    if decoded.diff_ids:
        rootfs["Layers"] = list(decoded.diff_ids)
    doc["RootFS"] = rootfs
    doc["Metadata"] = {"LastTagTime": image.last_tag_time.text if image.last_tag_time else ZERO_TIME}
    if dialect.oci_image_config:
        doc["Config"] = oci_image_config(config)
    return doc


# The fields of an OCI image config (with Docker's extensions), as 28 keeps them: `(name, omitempty)`
_OCI_CONFIG = (
    ("User", False), ("ExposedPorts", True), ("Env", False), ("Entrypoint", False), ("Cmd", False),
    ("Volumes", False), ("WorkingDir", False), ("Labels", False), ("StopSignal", True), ("ArgsEscaped", True),
    ("Healthcheck", True), ("OnBuild", False), ("Shell", True),
)


def oci_image_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """28's Config: only the OCI image config's fields (empty lists and maps null, omitempty ones
    left out when empty), every object's keys sorted; an image without a config gets the zero one."""
    config = config if config is not None else decode_container_config(None)
    out: dict[str, Any] = {}
    for name, omitempty in _OCI_CONFIG:
        value = config.get(name)
        if isinstance(value, (list, dict)) and not value and name != "Healthcheck":
            value = None
        if omitempty and (value is None if name == "Healthcheck" else not value):
            continue
        out[name] = value
    return {key: _sorted_keys(out[key]) for key in sorted(out)}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def graph_driver_data(catalog: Catalog, image: CatalogImage) -> dict[str, str] | None:
    """overlay2 GetMetadata (§8.5): the top layer's dirs, lowers resolved through l/ links."""
    if image.top_chain_id is None:
        return None
    home = os.path.realpath(catalog.layout.overlay2)
    top = catalog.layer(image.top_chain_id)
    assert top is not None, "an image's top layer loads"
    cache_id = top.cache_id
    layer_dir = os.path.join(home, cache_id)
    if not os.path.isdir(layer_dir):
        raise StoreError("stat %s: no such file or directory" % layer_dir)
    data = {
        "MergedDir": os.path.join(layer_dir, "merged"),
        "UpperDir": os.path.join(layer_dir, "diff"),
        "WorkDir": os.path.join(layer_dir, "work"),
    }
    try:
        lower = open(os.path.join(layer_dir, "lower")).read()
    except FileNotFoundError:
        lower = ""
    lowers = []
    for entry in filter(None, lower.split(":")):
        try:
            target = os.readlink(os.path.join(home, entry))
        except OSError as exc:
            raise StoreError("readlink %s: %s" % (os.path.join(home, entry), exc.strerror)) from None
        lowers.append(os.path.normpath(os.path.join(home, "l", target)))
    if lowers:
        data["LowerDir"] = ":".join(lowers)
    return dict(sorted(data.items()))


def render_inspect(documents: list[dict[str, Any]]) -> str:
    """The CLI's output: a JSON array indented by 4 spaces, non-ASCII and HTML characters as is."""
    return json.dumps(documents, indent=4, ensure_ascii=False) + "\n"
