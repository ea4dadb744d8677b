"""`emustore cp SRC CONTAINER:DST`: put host files into a container's upper layer, like `docker cp`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emustore.commands import add_root_argument
from emustore.errors import EmustoreError
from emustore.stores.docker.containers import ContainerStore


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("cp", help="copy a host file or directory into a container, like `docker cp`")
    p.add_argument("source", metavar="SRC_PATH", help="host file or directory")
    p.add_argument("target", metavar="CONTAINER:DEST_PATH")
    add_root_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    container_text, sep, destination = args.target.partition(":")
    if not sep or not container_text or not destination:
        raise EmustoreError("must specify at least one container source (copying into a container only)")
    if not os.path.lexists(args.source):
        raise EmustoreError("no such file or directory: %s" % args.source)
    store = ContainerStore(args.root)
    store.change(store.find(container_text), [(Path(args.source), destination)], [])
    return 0
