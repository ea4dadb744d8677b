"""`emustore du`: like `docker system df [-v]` for the images and layers of a data root."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emustore.commands import add_root_argument
from emustore.digest import short_id
from emustore.display import human_size, since, table
from emustore.api import Store

if TYPE_CHECKING:
    from emustore.stores.docker.usage import DiskUsage


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("du", help="show disk usage of images and layers, like `docker system df`")
    add_root_argument(p)
    p.add_argument("-v", "--verbose", action="store_true", help="per image and per layer")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    usage = Store(args.root).disk_usage()
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
