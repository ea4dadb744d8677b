"""The Python API: pull into a data root and manage its images, as the CLI does.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emustore.platform import Platform
from emustore.pull import PullOptions, PullResult
from emustore.pull import pull as _pull
from emustore.reference import Reference

if TYPE_CHECKING:
    from emustore.stores.docker.catalog import CatalogImage
    from emustore.stores.docker.removal import DeleteRecord, PruneReport
    from emustore.stores.docker.usage import DiskUsage

# The store modules are imported by the methods that use them: `import emustore` (and every
# command line, which imports it) stays as fast to start as a pull needs.

__all__ = ["PullOptions", "Store", "pull"]


def pull(
    reference: str | Reference,
    root: str | os.PathLike[str],
    platform: str | Platform | None = None,
    options: PullOptions | None = None,
) -> PullResult:
    """Pull an image from its registry into the data root `root`, like `docker pull`; `options`
    as the CLI's (concurrency, force, limits, registry options, blob cache…), `platform` over theirs."""
    options = options or PullOptions()
    return _pull(reference, root, replace(options, platform=platform) if platform is not None else options)


class Store:
    """A Docker 20.10 overlay2 data root, written by emustore or by dockerd.

    Every call reads the root afresh, so a Store never shows stale state."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return "Store(%r)" % str(self.root)

    def pull(
        self, reference: str | Reference, platform: str | Platform | None = None, options: PullOptions | None = None
    ) -> PullResult:
        """Pull an image into this root."""
        return pull(reference, self.root, platform, options)

    def images(self, reference: str | None = None, all: bool = False) -> list[CatalogImage]:
        """Images as `docker images [REFERENCE]` lists them, newest first."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.listing import list_images

        return [summary.image for summary in list_images(Catalog(self.root), reference, all)]

    def image(self, reference: str) -> CatalogImage:
        """The image a reference, id or id prefix names (NoSuchImage if none)."""
        from emustore.stores.docker.catalog import Catalog

        return Catalog(self.root).resolve(reference)

    def inspect(self, reference: str) -> dict[str, Any]:
        """What `docker image inspect REFERENCE` prints for this image (one object)."""
        from emustore.stores.docker.catalog import Catalog
        from emustore.stores.docker.inspect import inspect_document

        catalog = Catalog(self.root)
        return inspect_document(catalog, catalog.resolve(reference))

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
