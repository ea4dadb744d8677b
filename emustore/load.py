"""`docker load` (every image of an archive or layout, registered as dockerd 20.10's load does)
and `pull --from` (one image of one)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from emustore import safejson
from emustore.digest import Digest
from emustore.errors import ManifestError
from emustore.progress import Reporter
from emustore.pull import LoadRegistration, PullOptions, PullResult, pull
from emustore.reference import Reference
from emustore.sources.archives import ArchivedImage, archive_images, parse_source_name, pick_image
from emustore.sources.files import open_files
from emustore.stores.destination import Destination


@dataclass(frozen=True)
class LoadedImage:
    image_id: str
    tags: tuple[Reference, ...]


def load(
    archive: str | os.PathLike[str] | BinaryIO,
    root: str | os.PathLike[str],
    options: PullOptions | None = None,
) -> Iterator[LoadedImage]:
    """Load each image of `archive` (a path, or a stream such as stdin) into `root`, in archive order
    (`options.platform` picks from an OCI index)."""
    options = (options or PullOptions()).for_root(root)
    platform = options.parsed_platform()
    store = options.destination(root)
    with _local_copy(archive, store) as path:
        files = open_files(path, None if isinstance(archive, (str, os.PathLike)) else "stdin")
        try:
            images = archive_images(files, platform)
            parents = _parent_links(images)
            for image in images:
                result = pull(
                    image.tags[0] if image.tags else image.resolve().reference,
                    root,
                    options,
                    source=image,
                    registration=LoadRegistration(image.tags),
                )
                yield LoadedImage(result.image_id, image.tags)
            if parents:
                store.link_parents(parents)
        finally:
            files.close()


def _parent_links(images: list[ArchivedImage]) -> dict[str, str]:
    """The Parent links dockerd's load keeps: those to another image of the same archive, checked
    (before anything is written) as dockerd checks them."""
    configs = {image.resolve().config_digest: image.resolve().config_bytes for image in images}
    links = {}
    for image in images:
        image_id = image.resolve().config_digest
        if image.parent and image.parent != image_id and image.parent in configs:
            check_parent(configs[image_id], configs[image.parent], image.parent)
            links[image_id] = image.parent
    return links


def check_parent(config_bytes: bytes, parent_bytes: bytes, parent_id: str) -> None:
    """dockerd's rule for a loaded Parent: its history and diff ids begin the image's."""
    image, parent = safejson.loads(config_bytes), safejson.loads(parent_bytes)
    history, parent_history = image.get("history") or [], parent.get("history") or []
    diff_ids = (image.get("rootfs") or {}).get("diff_ids") or []
    parent_diff_ids = (parent.get("rootfs") or {}).get("diff_ids") or []
    if not history and not parent_history:
        return
    if (
        len(parent_history) >= len(history)
        or parent_history != history[: len(parent_history)]
        or parent_diff_ids != diff_ids[: len(parent_diff_ids)]
    ):
        raise ManifestError(f"image {parent_id} is not a valid parent for {Digest.of_bytes(config_bytes)}")


@contextmanager
def _local_copy(archive: str | os.PathLike[str] | BinaryIO, store: Destination[Any, Any]) -> Iterator[Path]:
    """A path for the archive: itself, or a stream spooled into a staging set of the root's tmp/
    (as dockerd spools into its tmp/), which goes with the set, even if this process is killed."""
    if isinstance(archive, (str, os.PathLike)):
        yield Path(archive)
        return
    try:
        with store.staging("load") as staging:
            spool = staging.dir / "archive"
            with open(spool, "xb") as out:
                shutil.copyfileobj(archive, out, 1 << 20)
            yield spool
    finally:
        store.discard_staging()


def pull_from(
    source_name: str,
    reference: Reference,
    root: str | os.PathLike[str],
    options: PullOptions | None = None,
    reporter: Reporter | None = None,
) -> PullResult:
    """`pull --from TRANSPORT:PATH REF`: the image tagged REF there (or its only image), registered
    under REF as a load registers it (no distribution metadata: no registry was involved)."""
    options = options or PullOptions()
    name = parse_source_name(source_name)
    files = name.open()
    try:
        image = pick_image(archive_images(files, options.parsed_platform(), name.transport), reference, source_name)
        return pull(reference, root, options, reporter, source=image, registration=LoadRegistration((reference,)))
    finally:
        files.close()
