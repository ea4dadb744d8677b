"""`emustore rmi`: like `docker rmi`, in the data root."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument
from emustore.errors import EmustoreError
from emustore.api import Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("rmi", help="remove one or more images, like `docker rmi`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="reference, image id or id prefix")
    add_root_argument(p)
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.root)
    failed = False
    for text in args.images:
        try:
            for record in store.remove(text, force=args.force):
                print(record, flush=True)
        except EmustoreError as exc:
            print("emustore: %s" % exc, file=sys.stderr)
            failed = True
    return 1 if failed else 0
