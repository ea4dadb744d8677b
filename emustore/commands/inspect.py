"""`emustore inspect`: what `docker image inspect` prints, read from the data root."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_engine_argument, add_root_argument
from emustore.engines import requested_dialect
from emustore.errors import EmustoreError
from emustore.api import Store, render_inspect


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("inspect", help="show an image's details, like `docker image inspect`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="reference, image id or id prefix")
    add_engine_argument(p)
    add_root_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.root)
    engine = requested_dialect(args.engine)  # a bad version: one error before any image
    documents, errors = [], []
    for text in args.images:
        try:
            documents.append(store.inspect(text, engine=engine))
        except EmustoreError as exc:
            errors.append(str(exc))
    print(render_inspect(documents), end="")
    for message in errors:
        print("emustore: %s" % message, file=sys.stderr)
    return 1 if errors else 0
