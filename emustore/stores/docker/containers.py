"""Containers in a data root: create (Created state), list, change the upper layer, remove.

A container is containers/<id>/{config.v2.json,hostconfig.json,checkpoints/}, the layerdb
mount image/overlay2/layerdb/mounts/<id>/{mount-id,init-id,parent} and two overlay2 dirs,
<mount-id>-init (dockerd's init layer) and <mount-id> (the writable upper layer), each with an
l/ link (docs/container-format.md). Everything is staged, then renamed in under the root lock.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emustore.digest import is_hex64, short_id
from emustore.errors import EmustoreError, StoreError
from emustore.fsutil import ensure_dir, remove_tree, write_file
from emustore.stores.docker.catalog import Catalog, CatalogImage
from emustore.engines import Dialect
from emustore.stores.docker.containerconfig import CreateOptions, command_of, container_docs, image_platform
from emustore.stores.docker.containerfs import LayerStack, one_line, write_init_layer
from emustore.stores.docker.copypaths import (
    container_extract_dir,
    container_source,
    container_target,
    host_extract_dir,
    host_source,
    host_target,
    placement,
)
from emustore.stores.docker.copytree import ContainerTree, HostDestination, HostTree, UpperDestination, copy_tree
from emustore.stores.docker.containernames import check_name, generate_name
from emustore.stores.docker.containerstate import is_running, status
from emustore.stores.docker.dialect import chosen_dialect
from emustore.stores.docker.goconfig import ConfigTypeError, GoTime
from emustore.stores.docker.overlay2 import new_cache_id, new_link_id
from emustore.stores.docker.ownership import check_not_owned
from emustore.stores.docker.store import DockerStore

_LOWER_ELEMENT = re.compile(r"l/([A-Z2-7]{26})")


class NoSuchContainer(EmustoreError):
    """No container matches the name or id."""


class ContainerConflict(EmustoreError):
    """The name is taken, or the image cannot back a container."""


@dataclass(frozen=True)
class Container:
    """A container as config.v2.json and its layerdb mount describe it."""

    id: str
    doc: dict[str, Any]
    mount_id: str
    init_id: str
    parent: str

    @property
    def name(self) -> str:
        return str(self.doc.get("Name", "")).removeprefix("/")

    @property
    def image_id(self) -> str:
        return str(self.doc.get("Image", ""))

    @property
    def running(self) -> bool:
        return is_running(self.doc)

    def status(self, now: float) -> str:
        """`docker ps` STATUS at the time `now` (containerstate.py)."""
        return status(self.doc, now)

    @property
    def created(self) -> int | None:
        """Created, in whole seconds since the epoch (None when it does not parse)."""
        try:
            return GoTime.parse(str(self.doc.get("Created", ""))).unix
        except ConfigTypeError:
            return None


class ContainerStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.store = DockerStore(Path(root))
        self.layout = self.store.layout
        self.containers_dir = self.layout.root / "containers"
        self.mounts_dir = self.layout.layerdb / "mounts"

    # reading

    def list(self) -> list[Container]:
        """Every container with a readable config and mount, newest first (dockerd's ps order)."""
        found = []
        try:
            entries = sorted(os.listdir(self.containers_dir))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            container = self._read(entry)
            if container is not None:
                found.append(container)
        return sorted(found, key=_created_key, reverse=True)

    def _read(self, container_id: str) -> Container | None:
        if not is_hex64(container_id):
            return None
        try:
            doc = json.loads((self.containers_dir / container_id / "config.v2.json").read_bytes())
        except (OSError, ValueError):
            return None
        mount = self.store.layers.read_mount(container_id)
        if not isinstance(doc, dict) or not mount.valid:
            return None
        return Container(container_id, doc, str(mount.mount_id), str(mount.init_id), str(mount.parent))

    def find(self, text: str) -> Container:
        """The container a full id, name (with or without "/") or unique id prefix names."""
        containers = self.list()
        for container in containers:
            if text == container.id:
                return container
        for container in containers:
            if text.removeprefix("/") == container.name:
                return container
        matches = [c for c in containers if text and c.id.startswith(text)]
        if len(matches) > 1:
            raise NoSuchContainer("Multiple IDs found with provided prefix: %s" % text)
        if not matches:
            raise NoSuchContainer("No such container: %s" % text)
        return matches[0]

    def stack(self, container: Container) -> LayerStack:
        """The container's diff dirs, upper first, down to the image's base layer."""
        diffs = [self.store.overlay2.diff_dir(container.mount_id), self.store.overlay2.diff_dir(container.init_id)]
        chain: str | None = container.parent
        try:
            while chain:
                record = self.store.layers.read(chain)
                if not is_hex64(record.cache_id):
                    raise ValueError("not a cache id")  # it names a dir under overlay2/
                diffs.append(self.store.overlay2.diff_dir(record.cache_id))
                chain = record.parent
        except (OSError, ValueError):
            raise StoreError("container %s: its image layer %s is missing or unreadable" % (short_id(container.id), chain)) from None
        if not all(diff.is_dir() for diff in diffs):
            raise StoreError("container %s: a layer dir under overlay2/ is missing" % short_id(container.id))
        return LayerStack(diffs)

    def _require(self, container: Container) -> None:
        """Under the lock: the container is still there (another process may have removed it)."""
        if not (self.containers_dir / container.id).is_dir():
            raise NoSuchContainer("No such container: %s" % container.id)

    # writing

    def create(self, options: CreateOptions, force: bool = False, engine: str | Dialect | None = None) -> Container:
        """Write a container in the Created state for `options.image_text` as engine `engine` writes
        it (a version or Dialect; None: $EMUSTORE_ENGINE, else the root's dialect) and return it
        (into a root a running dockerd owns only with `force`)."""
        dialect = chosen_dialect(engine, self.layout.root)
        check_not_owned(self.layout.root, force)
        image = Catalog(self.layout.root).resolve(options.image_text)
        config = image.decoded.config_for(dialect) or {}
        if config.get("Volumes"):
            raise ContainerConflict("image %s declares volumes; containers with volumes are not supported" % options.image_text)
        if not image.top_chain_id:
            raise ContainerConflict("image %s has no layers" % options.image_text)
        command_of(options, config, dialect)
        name = check_name(options.name) if options.name is not None else None
        container_id = new_cache_id()
        mount_id = new_cache_id()
        with self.store.staging("create") as owned:
            staging = owned.dir
            top = self.store.layers.read(image.top_chain_id)
            self._stage_layers(staging, top.cache_id, mount_id)
            with self.store.lock():
                if not self.store.layers.exists(image.top_chain_id):
                    raise ContainerConflict("image %s was removed meanwhile" % options.image_text)
                taken = {c.name: c.id for c in self.list()}
                if name is not None and name in taken:
                    raise ContainerConflict(
                        'Conflict. The container name "/%s" is already in use by container "%s". '
                        "You have to remove (or rename) that container to be able to reuse that name."
                        % (name, taken[name])
                    )
                final_name = name if name is not None else generate_name(set(taken))
                docs = container_docs(
                    options, container_id, time.time_ns(), final_name, image.id, config, dialect, image_platform(image.decoded)
                )
                self._stage_records(staging, image, mount_id, docs.config_v2, docs.hostconfig, dialect.hostconfig_mode)
                self._publish(staging, container_id, mount_id, top.cache_id)
        created = self._read(container_id)
        assert created is not None
        return created

    def _stage_layers(self, staging: Path, top_cache_id: str, mount_id: str) -> None:
        """<mount-id>-init (init layer files) and <mount-id> (empty upper), each with diff/, work/work, link, lower."""
        overlay2 = self.store.overlay2
        top_lower = overlay2.lower_of(top_cache_id)
        init_lower = "l/" + overlay2.link_of(top_cache_id) + (":" + top_lower if top_lower else "")
        init_link, upper_link = new_link_id(), new_link_id()
        for dir_name, link, lower in (
            (mount_id + "-init", init_link, init_lower),
            (mount_id, upper_link, "l/" + init_link + ":" + init_lower),
        ):
            layer = staging / dir_name
            os.mkdir(layer, 0o710)
            os.chmod(layer, 0o710)
            ensure_dir(layer / "diff", 0o755)
            write_file(layer / "link", link.encode("ascii"), 0o644)
            write_file(layer / "lower", lower.encode("ascii"), 0o644)
            ensure_dir(layer / "work", 0o700)
            ensure_dir(layer / "work" / "work", 0o000)
        image_diffs = [overlay2.diff_dir(top_cache_id)] + [
            overlay2.diff_dir(overlay2_dir_of_link(self.layout.links, element))
            for element in (top_lower.split(":") if top_lower else [])
        ]
        write_init_layer(LayerStack([staging / (mount_id + "-init") / "diff", *image_diffs]))
        write_file(staging / (mount_id + "-init") / "committed", b"", 0o600)

    def _stage_records(
        self, staging: Path, image: CatalogImage, mount_id: str, config_v2: bytes, hostconfig: bytes, hostconfig_mode: int
    ) -> None:
        mount = staging / "mount"
        os.mkdir(mount, 0o755)
        os.chmod(mount, 0o755)
        write_file(mount / "mount-id", mount_id.encode("ascii"), 0o644, sync=True)
        write_file(mount / "init-id", (mount_id + "-init").encode("ascii"), 0o644, sync=True)
        write_file(mount / "parent", str(image.top_chain_id).encode("ascii"), 0o644, sync=True)
        container = staging / "container"
        os.mkdir(container, 0o710)
        os.chmod(container, 0o710)
        ensure_dir(container / "checkpoints", 0o700)
        write_file(container / "config.v2.json", config_v2, 0o600, sync=True)
        write_file(container / "hostconfig.json", hostconfig, hostconfig_mode, sync=True)

    def _publish(self, staging: Path, container_id: str, mount_id: str, top_cache_id: str) -> None:
        """Rename the staged pieces in (layers, then mount, then the container dir); undo on failure."""
        overlay2 = self.store.overlay2
        ensure_dir(self.mounts_dir, 0o755)
        ensure_dir(self.containers_dir, 0o710)
        overlay2.mark_committed(top_cache_id)
        done: list[Path] = []
        try:
            for dir_name in (mount_id + "-init", mount_id):
                os.rename(staging / dir_name, overlay2.layer_dir(dir_name))
                done.append(overlay2.layer_dir(dir_name))
                link = self.layout.links / overlay2.link_of(dir_name)
                os.symlink("../%s/diff" % dir_name, link)
                done.append(link)
            os.rename(staging / "mount", self.mounts_dir / container_id)
            done.append(self.mounts_dir / container_id)
            os.rename(staging / "container", self.containers_dir / container_id)
        except BaseException:
            for path in reversed(done):
                remove_tree(path, ignore_errors=True)
            raise

    def remove(self, container: Container) -> None:
        """Delete what create wrote (the image's `committed` stays, as with dockerd)."""
        with self.store.lock():
            self._require(container)
            doomed = self.layout.staging / ("rm-" + secrets.token_hex(8))
            self.layout.prepare_staging()
            os.rename(self.containers_dir / container.id, doomed)  # gone for dockerd from here on
            overlay2 = self.store.overlay2
            for dir_name in (container.mount_id, container.init_id):
                if dir_name:
                    overlay2.remove(dir_name)
            remove_tree(self.mounts_dir / container.id, ignore_errors=True)
            remove_tree(doomed, ignore_errors=True)

    def change(
        self, container: Container, additions: Sequence[tuple[str, str]], deletions: Sequence[str], force: bool = False
    ) -> None:
        """Copy host paths into the container as `docker cp` does, then delete paths (whiteouts).
        A running dockerd may have the container's layers mounted: its root is refused unless `force`."""
        check_not_owned(self.layout.root, force)
        stack = self.stack(container)
        with self.store.lock():
            self._require(container)
            for source, destination in additions:
                copy_in(stack, source, destination)
            for path in deletions:
                stack.delete(path)

    def copy_out(self, container: Container, source: str, destination: str, shown: str) -> None:
        """`docker cp CONTAINER:SRC DEST`: a path of the container's merged view onto the host."""
        copy_out(self.stack(container), source, destination, shown)


def copy_in(stack: LayerStack, source: str, destination: str) -> None:
    """`docker cp SRC CONTAINER:DEST`: a host path into the container's upper dir."""
    found = host_source(source)
    target = container_target(stack, destination)
    where, top = placement(target, found.is_dir, found.name, destination)
    copy_tree(HostTree(found.path), top, UpperDestination(stack, container_extract_dir(stack, where)))


def copy_out(stack: LayerStack, source: str, destination: str, shown: str) -> None:
    """`docker cp CONTAINER:SRC DEST` (`shown`: SRC as given, for messages)."""
    found = container_source(stack, source, shown)
    target = host_target(destination)
    where, top = placement(target, found.is_dir, found.name, destination)
    copy_tree(ContainerTree(stack, found.rel), top, HostDestination(host_extract_dir(where)))


def _created_key(container: Container) -> tuple[str, str]:
    """Created (RFC 3339 UTC, fraction trimmed as Go prints it) in an order that sorts by time."""
    seconds, _, fraction = str(container.doc.get("Created", "")).rstrip("Z").partition(".")
    return seconds, fraction.ljust(9, "0")


def overlay2_dir_of_link(links: Path, element: str) -> str:
    """The overlay2 dir name an `l/<link>` lower element points at (`../<cache id>/diff`)."""
    match = _LOWER_ELEMENT.fullmatch(element)
    target = os.readlink(links / match[1]).split("/") if match else []
    if len(target) != 3 or target[0] != ".." or target[2] != "diff" or not is_hex64(target[1]):
        raise StoreError("not a layer link in a lower file: %s" % one_line(element))
    return target[1]
