"""`emustore images`: like `docker images`, read from the data root."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.display import binary_size, ctr_table, human_size, since, table
from emustore.gojson import go_json
from emustore.api import DOCKER_NAMESPACE, Store
from emustore.digest import short_id
from emustore.reference import parse_reference

if TYPE_CHECKING:
    from emustore.stores.containerd.catalog import ImageView
    from emustore.stores.docker.listing import ImageRow


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("images", help="list images, like `docker images`")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]", help="only references matching this")
    add_root_argument(p, any_store=True)
    p.add_argument("-a", "--all", action="store_true", help="show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument(
        "--format", choices=("table", "json", "ctr"), default="table",
        help="table (default) or one JSON object per line; with --store containerd the table is `ctr images ls`'s "
        "(`docker images`' for the moby namespace: ctr forces ctr's)",
    )
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        return _containerd(args)
    found = Store(store_root(args)).image_rows(args.reference, args.all, args.digests)
    now = time.time()
    if args.quiet:
        print("".join(_image_id(row, args.no_trunc) + "\n" for row in found), end="")
    elif args.format == "json":
        print("".join(go_json(_json_row(row, now, args.no_trunc)) + "\n" for row in found), end="")
    else:
        header = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
        lines = [
            [row.repository, row.tag]
            + ([row.digest] if args.digests else [])
            + [_image_id(row, args.no_trunc), _created_since(row, now), human_size(row.summary.image.size)]
            for row in found
        ]
        print(table(header, lines), end="")
    return 0


def _image_id(row: ImageRow, no_trunc: bool) -> str:
    return row.summary.image.id if no_trunc else row.summary.image.short_id


def _created_since(row: ImageRow, now: float) -> str:
    created = row.summary.image.created
    return "N/A" if created.text.startswith("0001-") else since(created.unix, now)


def _json_row(row: ImageRow, now: float, no_trunc: bool) -> dict[str, str]:
    """The keys `docker images --format '{{json .}}'` prints, in its order."""
    image = row.summary.image
    return {
        "Containers": "N/A",
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(image.created.unix)),
        "CreatedSince": _created_since(row, now),
        "Digest": row.digest,
        "ID": _image_id(row, no_trunc),
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": human_size(image.size),
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(image.size, 4),
    }


def _containerd(args: argparse.Namespace) -> int:
    """`ctr -n NS images ls [-q]`: REF TYPE DIGEST SIZE PLATFORMS LABELS (a REFERENCE keeps that name only)."""
    views = Store(store_root(args)).containerd(args.namespace).images()
    if args.reference:
        views = [view for view in views if view.image.name == args.reference]
    if args.quiet:
        print("".join(view.image.name + "\n" for view in views), end="")
        return 0
    if args.format == "json":
        print("".join(go_json(_ctr_json(view)) + "\n" for view in views), end="")
        return 0
    if args.format == "table" and args.namespace == DOCKER_NAMESPACE:
        print(_docker_table(views, args.no_trunc, args.digests), end="")
        return 0
    print(ctr_table(["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"], [_ctr_row(view) for view in views]), end="")
    return 0


def _docker_table(views: list[ImageView], no_trunc: bool, digests: bool) -> str:
    """What Docker 28 with its containerd store prints: IMAGE ID is the target (index or manifest) digest,
    SIZE the platform's blobs plus its unpacked snapshots; rows newest first (then by name)."""
    now = time.time()
    rows = []
    for view in sorted(views, key=lambda v: (-(v.created or 0), v.image.name)):
        reference = parse_reference(view.image.name)
        digest = view.image.digest
        size = view.docker_size
        rows.append(
            [reference.familiar_name, reference.tag or "<none>"]
            + ([digest] if digests else [])
            + [digest if no_trunc else short_id(digest), since(view.created, now) if view.created is not None else "N/A",
               human_size(size) if size is not None else "N/A"]
        )
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    return table(header, rows)


def _ctr_row(view: ImageView) -> list[str]:
    image = view.image
    labels = ",".join("%s=%s" % item for item in sorted(image.labels.items())) or "-"
    size = binary_size(view.size) if view.size is not None else "-"
    return [image.name, image.media_type, image.digest, size, ",".join(view.platforms) or "-", labels]


def _ctr_json(view: ImageView) -> dict[str, object]:
    image = view.image
    return {
        "Name": image.name, "MediaType": image.media_type, "Digest": image.digest, "Size": view.size,
        "Platforms": view.platforms, "Labels": dict(sorted(image.labels.items())),
    }
