"""`emustore tag`: like `docker tag`, in the data root."""

from __future__ import annotations

import argparse

from emustore.commands import add_root_argument
from emustore.api import Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("tag", help="create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    add_root_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    Store(args.root).tag(args.source, args.target)
    return 0
