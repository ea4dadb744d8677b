"""`emustore du`: like `docker system df [-v]` for the images and layers of a data root."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.digest import short_id
from emustore.display import binary_size, ctr_table, human_size, since, table
from emustore.api import Store

if TYPE_CHECKING:
    from emustore.stores.containerd.usage import ContainerdUsage
    from emustore.stores.docker.usage import DiskUsage


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("du", help="show disk usage of images and layers, like `docker system df`")
    add_root_argument(p, any_store=True)
    p.add_argument(
        "-v", "--verbose", action="store_true",
        help="per image and per layer (--store containerd: per blob as `ctr content ls`, per snapshot as `ctr snapshots usage`)",
    )
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        found = Store(store_root(args)).containerd(args.namespace).disk_usage()
        print(_containerd_verbose(found) if args.verbose else _containerd_summary(found), end="")
        return 0
    usage = Store(store_root(args)).disk_usage()
    print(_verbose(usage) if args.verbose else _summary(usage), end="")
    return 0


def _summary(usage: DiskUsage) -> str:
    reclaimable = human_size(usage.reclaimable, 4)
    if usage.layers_size:
        reclaimable += " (%d%%)" % (usage.reclaimable * 100 // usage.layers_size)
    row = ["Images", str(len(usage.images)), str(usage.active), human_size(usage.layers_size, 4), reclaimable]
    return table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], [row])


def _verbose(usage: DiskUsage) -> str:
    image_rows = []
    for entry in usage.images:
        image = entry.image
        tags = image.repo_tags
        repository, _, tag = tags[0].rpartition(":") if tags else ("<none>", "", "<none>")
        created = "N/A" if image.created.text.startswith("0001-") else since(image.created.unix)
        image_rows.append([
            repository, tag, image.short_id, created, human_size(image.size, 4),
            human_size(entry.shared_size, 4), human_size(entry.unique_size, 4), str(entry.containers),
        ])
    layer_rows = [
        [short_id(layer.chain_id), short_id(layer.diff_id), human_size(layer.size, 4), str(layer.images)]
        for layer in usage.layers
    ]
    return (
        "Images space usage:\n\n"
        + table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], image_rows)
        + "\nLayers space usage:\n\n"
        + table(["CHAIN ID", "DIFF ID", "SIZE", "IMAGES"], layer_rows)
    )


def _containerd_summary(usage: ContainerdUsage) -> str:
    return ctr_table(["TYPE", "TOTAL", "SIZE"], [
        ["Content", str(len(usage.contents)), binary_size(usage.content_size)],
        ["Snapshots", str(len(usage.snapshots)), binary_size(usage.snapshot_size)],
    ])


def _containerd_verbose(usage: ContainerdUsage) -> str:
    """The digests and sizes of `ctr content ls`, then `ctr snapshots usage` as it prints it."""
    snapshots = [
        [snap.name, binary_size(snap.size) if snap.size is not None else "-", str(snap.inodes) if snap.inodes is not None else "-"]
        for snap in usage.snapshots
    ]
    return (
        ctr_table(["DIGEST", "SIZE"], [[digest, human_size(size, 4)] for digest, size in usage.contents])
        + "\n"
        + ctr_table(["KEY", "SIZE", "INODES"], snapshots)
    )
