"""The containers of the explained image: config, layerdb mount and their two overlay2 dirs.

Read tolerantly like the rest of the walk: a missing file is None, never an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from emustore.stores.docker.store import DockerStore


@dataclass(frozen=True)
class ContainerLayer:
    """overlay2/<dir> of a container (its init layer or its writable layer)."""

    dir: Path
    link_id: str | None
    lower: str | None


@dataclass(frozen=True)
class ContainerStep:
    id: str
    name: str
    config_path: Path
    mount_dir: Path
    parent: str | None  # layerdb/mounts/<id>/parent: the image's top chain id
    init: ContainerLayer | None  # from init-id
    upper: ContainerLayer | None  # from mount-id


def containers_of(store: DockerStore, image_id: str) -> list[ContainerStep]:
    """Containers whose config.v2.json "Image" is `image_id`, by id."""
    steps = []
    base = store.layout.root / "containers"
    for entry in sorted(_listdir(base)):
        config_path = base / entry / "config.v2.json"
        try:
            doc = json.loads(config_path.read_bytes())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("Image") != image_id:
            continue
        mount = store.layers.read_mount(entry)
        steps.append(
            ContainerStep(
                id=entry,
                name=str(doc.get("Name", "")),
                config_path=config_path,
                mount_dir=mount.path,
                parent=mount.parent,
                init=_layer(store, mount.init_id),
                upper=_layer(store, mount.mount_id),
            )
        )
    return steps


def _layer(store: DockerStore, dir_name: str | None) -> ContainerLayer | None:
    if not dir_name:
        return None
    layer_dir = store.overlay2.layer_dir(dir_name)
    return ContainerLayer(layer_dir, _read(layer_dir / "link"), _read(layer_dir / "lower"))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
