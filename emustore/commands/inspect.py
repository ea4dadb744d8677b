"""`emustore inspect`: what `docker image inspect` prints, read from the data root."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from emustore.commands import add_engine_argument, add_root_argument, add_store_arguments, store_root
from emustore.engines import requested_dialect
from emustore.errors import EmustoreError
from emustore.api import Store, render_inspect


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("inspect", help="show an image's details, like `docker image inspect`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="reference, image id or id prefix")
    add_engine_argument(p)
    add_root_argument(p, any_store=True)
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        return _containerd(args)
    store = Store(store_root(args))
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


def _containerd(args: argparse.Namespace) -> int:
    """A JSON array of each image's record, walk, check and snapshots (emustore's own document)."""
    images = Store(store_root(args)).containerd(args.namespace)
    documents: list[dict[str, Any]] = []
    errors = []
    for text in args.images:
        try:
            documents.append(images.inspect(text))
        except EmustoreError as exc:
            errors.append(str(exc))
    print(json.dumps(documents, indent=4))
    for message in errors:
        print("emustore: %s" % message, file=sys.stderr)
    return 1 if errors else 0
