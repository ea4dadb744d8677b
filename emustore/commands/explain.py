"""`emustore explain`: walk from an image reference to the files of the data root."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.api import Store
from emustore.errors import UsageError
from emustore.explain import containerd_render
from emustore.explain.html import render_html
from emustore.explain.text import render_merged, render_text
from emustore.fsutil import atomic_write

if TYPE_CHECKING:
    from emustore.explain.mount import LookMount


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("explain", help="show how an image is laid out on disk, step by step")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]|ID")
    add_root_argument(p, any_store=True)
    p.add_argument("--html", metavar="FILE", help="write the walk as one self-contained HTML page instead (diagram, layers, merged view, mount, containers)")
    p.add_argument("--files", action="store_true", help="list every entry of every layer, not only the changes")
    p.add_argument("--merged", metavar="PATH", nargs="?", const="/",
                   help="only list what a container of the image sees (at PATH and below), with each entry's layer")
    p.add_argument("--mount", metavar="DIR", help="mount the image read-only at DIR, an empty directory (root; umount DIR when done)")
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(store_root(args))
    if args.store == "containerd":
        found = store.containerd(args.namespace).explain(args.image)
        return _show(args, found.look, lambda: containerd_render.render_html(found),
                     lambda path: containerd_render.render_merged(found, path), lambda: containerd_render.render_text(found, args.files))
    walk = store.explain(args.image)
    return _show(args, walk.look, lambda: render_html(walk), lambda path: render_merged(walk, path), lambda: render_text(walk, args.files))


def _show(
    args: argparse.Namespace, look: LookMount | None, html: Callable[[], str], merged: Callable[[str], str], text: Callable[[], str]
) -> int:
    """--mount, --html, --merged, or the text, of either store's walk."""
    if args.mount:
        if look is None:
            raise UsageError("%s has no layer to mount" % args.image)
        look.run(Path(args.mount))
        print("Mounted %s read-only at %s; umount %s when done" % (args.image, args.mount, args.mount))
    elif args.html:
        target = Path(args.html)
        atomic_write(target, html().encode("utf-8"), 0o644)
        print("Wrote %s" % target)
    elif args.merged is not None:
        print(merged(args.merged), end="")
    else:
        print(text(), end="")
    return 0
