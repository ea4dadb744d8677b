"""`emustore explain`: walk from an image reference to the files of the data root."""

from __future__ import annotations

import argparse
from pathlib import Path

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.api import Store
from emustore.errors import UsageError
from emustore.explain import containerd_render
from emustore.explain.html import render_html
from emustore.explain.text import render_merged, render_text
from emustore.fsutil import atomic_write


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("explain", help="show how an image is laid out on disk, step by step")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]|ID")
    add_root_argument(p)
    p.add_argument("--html", metavar="FILE", help="write the walk as one self-contained HTML page instead (diagram, layers, merged view, mount, containers)")
    p.add_argument("--files", action="store_true", help="list every entry of every layer, not only the changes")
    p.add_argument("--merged", metavar="PATH", nargs="?", const="/",
                   help="only list what a container of the image sees (at PATH and below), with each entry's layer")
    p.add_argument("--mount", metavar="DIR", help="mount the image read-only at DIR, an empty directory (root; umount DIR when done)")
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        return _containerd(args)
    walk = Store(store_root(args)).explain(args.image)
    if args.mount:
        if walk.look is None:
            raise UsageError("%s has no layer to mount" % args.image)
        walk.look.run(Path(args.mount))
        print("Mounted %s read-only at %s; umount %s when done" % (args.image, args.mount, args.mount))
    elif args.html:
        target = Path(args.html)
        atomic_write(target, render_html(walk).encode("utf-8"), 0o644)
        print("Wrote %s" % target)
    elif args.merged is not None:
        print(render_merged(walk, args.merged), end="")
    else:
        print(render_text(walk, files=args.files), end="")
    return 0


def _containerd(args: argparse.Namespace) -> int:
    """The image record → content → snapshots chain of a containerd root."""
    walk = Store(store_root(args)).containerd(args.namespace).explain(args.image)
    if args.mount:
        if walk.look is None:
            raise UsageError("%s has no unpacked snapshot to mount" % args.image)
        walk.look.run(Path(args.mount))
        print("Mounted %s read-only at %s; umount %s when done" % (args.image, args.mount, args.mount))
    elif args.html:
        atomic_write(Path(args.html), containerd_render.render_html(walk).encode("utf-8"), 0o644)
        print("Wrote %s" % args.html)
    elif args.merged is not None:
        print(containerd_render.render_merged(walk, args.merged), end="")
    else:
        print(containerd_render.render_text(walk, files=args.files), end="")
    return 0
