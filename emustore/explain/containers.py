"""The containers of the explained image: config files, layerdb mount record, their two overlay2
dirs (init and read-write layer) and the overlay mount dockerd makes for them.

Read tolerantly like the rest of the walk: a missing file is None, never an error; every file is
read bounded and without following a link, and ids become paths only in the form dockerd writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import is_hex64
from emustore.explain.changes import ImageFiles, LayerChanges
from emustore.explain.mount import LookMount, OverlayMount, container_mount
from emustore import safejson
from emustore.fsck.findings import MAX_READ, Findings, is_real_dir, is_regular, listdir
from emustore.stores.docker.store import DockerStore

ROOTLESS_XATTR = "user.overlay.opaque"


def read_small(path: Path) -> str | None:
    """A metadata file's text: None when missing, a link, not a regular file, or oversized."""
    return Findings().read(path, required=False)


def bounded(path: Path) -> bool:
    """A regular file itself (not a link) of at most MAX_READ bytes: safe to hand to a store reader."""
    return is_regular(path) and os.lstat(path).st_size <= MAX_READ


def rootless(files: ImageFiles) -> bool:
    """Whether dockerd mounts this root with `userxattr`: its opaque dirs carry user.overlay.opaque
    (a rootless daemon's layers), or this process runs in a user namespace (dockerd's own test)."""
    if any(c.entry.opaque == ROOTLESS_XATTR for layer in files.layers for c in layer.changes):
        return True
    uid_map = read_small(Path("/proc/self/uid_map")) or ""
    return uid_map.split() not in ([], ["0", "0", "4294967295"])


@dataclass(frozen=True)
class ContainerLayer:
    """overlay2/<dir> of a container (its init layer or its writable layer)."""

    dir: Path
    link_id: str | None
    lower: str | None
    committed: bool


@dataclass(frozen=True)
class ContainerStep:
    id: str
    name: str
    config_path: Path
    config_files: list[tuple[str, int]]  # containers/<id>/ entries: name, size (-1: a dir or other)
    mount_dir: Path
    record: dict[str, str | None]  # layerdb/mounts/<id>/{mount-id,init-id,parent}
    init: ContainerLayer | None  # from init-id
    upper: ContainerLayer | None  # from mount-id
    mount: OverlayMount | None = None
    look: LookMount | None = None
    notes: list[str] = field(default_factory=list)
    files: list[LayerChanges] = field(default_factory=list)  # init, then read-write layer, against the image

    def diff_dirs(self) -> list[Path | None]:
        """The init and read-write layers' diff dirs (None where not a real dir)."""
        dirs = [layer.dir / "diff" if layer is not None else None for layer in (self.init, self.upper)]
        return [d if d is not None and is_real_dir(d) else None for d in dirs]

    @property
    def parent(self) -> str | None:
        """layerdb/mounts/<id>/parent: the image's top chain id."""
        return self.record.get("parent")


def containers_of(store: DockerStore, image_id: str, userxattr: bool) -> list[ContainerStep]:
    """Containers whose config.v2.json "Image" is `image_id`, by id."""
    steps = []
    base = store.layout.root / "containers"
    for entry in listdir(base):
        if not is_hex64(entry) or not is_real_dir(base / entry):
            continue
        config_path = base / entry / "config.v2.json"
        try:
            doc = safejson.loads(read_small(config_path) or "")
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("Image") != image_id:
            continue
        steps.append(_container(store, entry, doc, config_path, userxattr))
    return steps


def _container(store: DockerStore, entry: str, doc: dict[str, object], config_path: Path, userxattr: bool) -> ContainerStep:
    mount_dir = store.layers.mount_path(entry)
    record = {name: read_small(mount_dir / name) for name in ("mount-id", "init-id", "parent")}
    mount_id = (record["mount-id"] or "").strip()
    init_id = (record["init-id"] or "").strip()
    upper = _layer(store, mount_id) if is_hex64(mount_id) else None
    init = _layer(store, init_id) if init_id == mount_id + "-init" and upper is not None else None
    home = str(store.layout.overlay2)
    mount = look = None
    notes = []
    if upper is not None:
        mount = container_mount(home, mount_id, upper.lower, upper.committed, userxattr)
        look = LookMount(home, mount_id + "/diff", upper.lower, userxattr)
    else:
        notes.append("mount-id does not name a container layer dir: no mount")
    return ContainerStep(
        id=entry,
        name=str(doc.get("Name", "")),
        config_path=config_path,
        config_files=_config_files(config_path.parent),
        mount_dir=mount_dir,
        record=record,
        init=init,
        upper=upper,
        mount=mount,
        look=look,
        notes=notes,
    )


def _config_files(path: Path) -> list[tuple[str, int]]:
    files = []
    for name in listdir(path):
        try:
            st = os.lstat(path / name)
        except OSError:
            continue
        files.append((name, st.st_size if is_regular(path / name) else -1))
    return files


def _layer(store: DockerStore, dir_name: str) -> ContainerLayer | None:
    layer_dir = store.overlay2.layer_dir(dir_name)
    if not is_real_dir(layer_dir):
        return None
    committed = os.path.lexists(layer_dir / "committed")
    return ContainerLayer(layer_dir, _strip(read_small(layer_dir / "link")), _strip(read_small(layer_dir / "lower")), committed)


def _strip(text: str | None) -> str | None:
    return text.strip() if text is not None else None
