"""The Python API: everything the CLI does to a data root, it does through here.

    import emustore
    emustore.pull("127.0.0.1:5000/app:v1", root="/tmp/docker-root")
    store = emustore.Store("/tmp/docker-root")
    [image.repo_tags for image in store.images()]
    store.inspect("127.0.0.1:5000/app:v1")["RootFS"]["Layers"]
    store.tag("127.0.0.1:5000/app:v1", "app:test")
    store.remove("app:test")
"""

from __future__ import annotations

import os
from dataclasses import replace
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from emustore.platform import Platform
from emustore.progress import Reporter
from emustore.pull import PullFailure, PullOptions, PullResult
from emustore.pull import pull_all as _pull_all
from emustore.pull import pull as _pull
from emustore.reference import Reference
from emustore.stores.containerd.layout import DEFAULT_ROOT as CONTAINERD_ROOT
from emustore.stores.containerd.layout import DOCKER_NAMESPACE

if TYPE_CHECKING:
    from emustore.engines import Dialect
    from emustore.explain.walk import Walk
    from emustore.fsck.findings import Problem
    from emustore.load import LoadedImage
    from emustore.save import SavedImage
    from emustore.stores.docker.catalog import Catalog, CatalogImage
    from emustore.stores.docker.containers import ContainerStore
    from emustore.stores.docker.listing import ImageRow
    from emustore.stores.docker.removal import DeleteRecord, PruneReport
    from emustore.stores.docker.usage import DiskUsage
    from emustore.explain.containerd import ContainerdWalk
    from emustore.stores.containerd.catalog import ContainerdCatalog, ImageView
    from emustore.stores.containerd.removal import Removal
    from emustore.stores.containerd.usage import ContainerdUsage

# The store modules are imported by the methods that use them: `import emustore` (and every
# command line, which imports it) stays as fast to start as a pull needs.

__all__ = ["CONTAINERD_ROOT", "DOCKER_NAMESPACE", "PullFailure", "PullOptions", "Store", "pull", "render_inspect"]


def __getattr__(name: str) -> Any:
    """Names imported only when used: `CreateOptions` (what `Store.containers().create` takes)."""
    if name == "CreateOptions":
        from emustore.stores.docker.containerconfig import CreateOptions

        return CreateOptions
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def render_inspect(documents: list[dict[str, Any]]) -> str:
    """What `docker image inspect` prints for these documents (Store.inspect)."""
    from emustore.stores.docker.inspect import render_inspect as render

    return render(documents)


def pull(
    reference: str | Reference,
    root: str | os.PathLike[str],
    platform: str | Platform | None = None,
    options: PullOptions | None = None,
) -> PullResult:
    """Pull an image from its registry into the data root `root`, like `docker pull`; `options`
    as the CLI's (concurrency, force, limits, registry options, blob cache…), `platform` over theirs."""
    return Store(root).pull(reference, platform, options)


class Store:
    """A Docker overlay2 data root (Engine 20.10's, 26's or 28's), written by emustore or by dockerd.

    Every call reads the root afresh, so a Store never shows stale state."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return "Store(%r)" % str(self.root)

    def pull(
        self,
        reference: str | Reference,
        platform: str | Platform | None = None,
        options: PullOptions | None = None,
        reporter: Reporter | None = None,
    ) -> PullResult:
        """Pull an image into this root (`platform` over the one in `options`)."""
        options = options or PullOptions()
        return _pull(reference, self.root, replace(options, platform=platform) if platform is not None else options, reporter)

    def pull_all(
        self, references: Sequence[str | Reference], options: PullOptions | None = None, reporter: Reporter | None = None
    ) -> Iterator[PullResult | PullFailure]:
        """Pull several images in turn (what they share is downloaded once); failures are yielded, not raised."""
        return _pull_all(references, self.root, options, reporter)

    def pull_from(
        self, source: str, reference: Reference, options: PullOptions | None = None, reporter: Reporter | None = None
    ) -> PullResult:
        """`pull --from TRANSPORT:PATH REF`: the image from a docker-archive, OCI archive or layout."""
        from emustore.load import pull_from

        return pull_from(source, reference, self.root, options, reporter)

    def load(self, archive: str | os.PathLike[str] | BinaryIO, options: PullOptions | None = None) -> Iterator[LoadedImage]:
        """`docker load`: each image of an archive or layout (a path, or a stream), in archive order."""
        from emustore.load import load

        return load(archive, self.root, options)

    def save(self, names: list[str], out: str | os.PathLike[str] | IO[bytes], format: str = "docker") -> list[SavedImage]:
        """`docker save NAME…` to a path (written atomically) or a stream; format "docker" or "oci"."""
        from emustore.save import save, save_to_path

        if isinstance(out, (str, os.PathLike)):
            return save_to_path(self.root, names, out, format)
        return save(self.root, names, out, format)

    def image_rows(self, reference: str | None = None, all: bool = False, digests: bool = False) -> list[ImageRow]:
        """The rows `docker images [--all] [--digests] [REFERENCE]` prints, in its order."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.listing import list_images, rows

        return [row for summary in list_images(Catalog(self.root), reference, all) for row in rows(summary, digests)]

    def containerd(self, namespace: str = "default") -> ContainerdImages:
        """The root as a containerd root (`--store containerd`), namespace `namespace`."""
        return ContainerdImages(self.root, namespace)

    def containers(self) -> ContainerStore:
        """The root's containers: list, find, create (`engine=` as `inspect`), change (cp into,
        delete paths), copy_out, remove."""
        from emustore.stores.docker.containers import ContainerStore

        return ContainerStore(self.root)

    def fsck(self) -> list[Problem]:
        """What is wrong with the root, checked against the format dockerd 20.10 writes."""
        from emustore.fsck import check

        return check(self.root)

    def dialect(self) -> tuple[Dialect, str]:
        """The engine dialect the root is in (fsck accepts each) and what told it."""
        from emustore.stores.docker.dialect import explained_dialect

        return explained_dialect(self.root)

    def repair(self, force: bool = False) -> list[Path]:
        """Remove the leftovers of interrupted writes (what `fsck --repair` removes)."""
        from emustore.fsck import repair

        return repair(self.root, force=force)

    def explain(self, reference: str) -> Walk:
        """Every file from a reference down to the layers on disk, what each layer changes, the merged
        view, the overlay mount dockerd makes and the containers (render with emustore.explain.text
        render_text / render_merged, or emustore.explain.html render_html)."""
        from emustore.explain.walk import explain

        return explain(self.root, reference)

    def images(self, reference: str | None = None, all: bool = False) -> list[CatalogImage]:
        """Images as `docker images [REFERENCE]` lists them, newest first."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.listing import list_images

        return [summary.image for summary in list_images(Catalog(self.root), reference, all)]

    def catalog(self) -> Catalog:
        """The root read once, for many lookups (`resolve`, `images`, `layers`); stale after a change."""
        from emustore.stores.docker.catalog import Catalog

        return Catalog(self.root)

    def image(self, reference: str) -> CatalogImage:
        """The image a reference, id or id prefix names (NoSuchImage if none)."""
        from emustore.stores.docker.catalog import Catalog

        return Catalog(self.root).resolve(reference)

    def inspect(self, reference: str, engine: str | Dialect | None = None) -> dict[str, Any]:
        """What `docker image inspect REFERENCE` prints for this image (one object) with engine
        `engine` (a version or Dialect; None: $EMUSTORE_ENGINE, else the root's, stores/docker/dialect.py)."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.dialect import chosen_dialect
        from emustore.stores.docker.inspect import inspect_document

        dialect = chosen_dialect(engine, self.root)
        catalog = Catalog(self.root)
        return inspect_document(catalog, catalog.resolve(reference), dialect)

    def tag(self, source: str, target: str) -> str:
        """`docker tag SOURCE TARGET`; returns the tag as docker shows it."""
        from emustore.stores.docker.removal import tag_image

        return tag_image(self.root, source, target)

    def remove(self, reference: str, force: bool = False) -> list[DeleteRecord]:
        """`docker rmi [-f] REFERENCE`; returns the Untagged/Deleted records."""
        from emustore.stores.docker.removal import remove_image

        return remove_image(self.root, reference, force=force)

    def prune(self, all: bool = False) -> PruneReport:
        """`docker image prune [-a] -f`."""
        from emustore.stores.docker.removal import prune_images

        return prune_images(self.root, all_images=all)

    def disk_usage(self) -> DiskUsage:
        """`docker system df -v` for images and layers."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.usage import disk_usage

        return disk_usage(Catalog(self.root))


class ContainerdImages:
    """One namespace of a containerd root: list, inspect, remove (with containerd's garbage
    collection), disk usage, fsck. Reads happen under our writer lock when emustore ever wrote here."""

    def __init__(self, root: Path, namespace: str) -> None:
        from emustore.stores.containerd.store import ContainerdStore

        self.root = root
        self.store = ContainerdStore(root, namespace=namespace)
        self.namespace = namespace

    def catalog(self) -> ContainerdCatalog:
        """The namespace read once (image records, content, snapshots)."""
        from emustore.stores.containerd.catalog import ContainerdCatalog

        with self.store.reading():
            return ContainerdCatalog(self.root, self.namespace)

    def images(self) -> list[ImageView]:
        """Every image of the namespace as `ctr images ls` lists it (name order), walked from its target."""
        catalog = self.catalog()
        return [catalog.view(catalog.records.images[name]) for name in catalog.names()]

    def inspect(self, reference: str) -> dict[str, Any]:
        """An image's record, target, manifest, config, layers and snapshots, and `ctr images check`'s verdict."""
        from emustore.stores.containerd.catalog import document

        catalog = self.catalog()
        return document(catalog, catalog.view(catalog.resolve(reference)))

    def remove(self, references: list[str], force: bool = False) -> Removal:
        """`ctr images rm --sync REF…`: the image records, then what containerd's collector removes."""
        from emustore.stores.containerd.removal import remove_images

        return remove_images(self.store, references, force=force)

    def disk_usage(self) -> ContainerdUsage:
        """`ctr content ls` sizes and `ctr snapshots usage` of the namespace."""
        from emustore.stores.containerd.usage import disk_usage

        with self.store.reading():
            return disk_usage(self.store.meta, self.store.snapshotter, self.namespace)

    def fsck(self) -> list[Problem]:
        """What is wrong with the root (every namespace), as containerd reads it (emustore/fsck/containerd.py)."""
        from emustore.fsck.containerd import check

        with self.store.reading():
            return check(self.store)

    def schema(self) -> int | None:
        """meta.db's v1/version: 3 (containerd 1.x) or 4 (2.x); None without a database."""
        with self.store.reading():
            return self.store.meta.schema()

    def repair(self, force: bool = False) -> list[Path]:
        """Remove the leftovers fsck reports (what `fsck --repair` removes)."""
        from emustore.fsck.containerd import repair

        return repair(self.store, force=force)

    def save(self, names: list[str], out: str | os.PathLike[str] | IO[bytes], format: str = "docker") -> list[str]:
        """The images `names` name, as a docker-archive or OCI archive (a path, written atomically, or a
        stream): layers decompressed from their blobs and verified; the config digests written."""
        from emustore.save import write_archive, write_to_path
        from emustore.stores.containerd.export import archive_images

        archived = archive_images(self.catalog(), names)

        def write(stream: IO[bytes]) -> list[str]:
            write_archive(archived, stream, format)
            return [image.image_id for image in archived]

        return write_to_path(out, write) if isinstance(out, (str, os.PathLike)) else write(out)

    def explain(self, reference: str) -> ContainerdWalk:
        """The image record → content → snapshots walk, each snapshot's changes, the merged view and
        the overlay mount (render with emustore.explain.containerd_render)."""
        from emustore.explain.containerd import explain

        return explain(self.catalog(), reference)
