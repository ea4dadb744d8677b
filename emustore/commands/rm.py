"""`emustore rm`: remove containers, like `docker rm`."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument
from emustore.errors import EmustoreError
from emustore.api import Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("rm", help="remove one or more containers, like `docker rm`")
    p.add_argument("containers", nargs="+", metavar="CONTAINER", help="name, id or id prefix")
    p.add_argument("-f", "--force", action="store_true", help="accepted for docker's sake (none run here)")
    add_root_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.root).containers()
    failed = False
    for text in args.containers:
        try:
            store.remove(store.find(text))
            print(text, flush=True)
        except EmustoreError as exc:
            print("emustore: %s" % exc, file=sys.stderr)
            failed = True
    return 1 if failed else 0
