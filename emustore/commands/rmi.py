"""`emustore rmi`: like `docker rmi`, in the data root."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.errors import EmustoreError
from emustore.api import Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("rmi", help="remove one or more images, like `docker rmi`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="reference, image id or id prefix")
    add_root_argument(p, any_store=True)
    p.add_argument(
        "-f", "--force", action="store_true",
        help="force removal of the image (--store containerd: skip the running-containerd check; the databases' "
        "own lock still refuses a live one)",
    )
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        return _containerd(args)
    store = Store(store_root(args))
    failed = False
    for text in args.images:
        try:
            for record in store.remove(text, force=args.force):
                print(record, flush=True)
        except EmustoreError as exc:
            print("emustore: %s" % exc, file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _containerd(args: argparse.Namespace) -> int:
    """`ctr images rm --sync REF…`: the names removed, one a line; nothing removed when one is missing."""
    removal = Store(store_root(args)).containerd(args.namespace).remove(list(args.images), force=args.force)
    print("".join(name + "\n" for name in removal.images), end="")
    return 0
