"""`emustore load`: like `docker load`, from a docker-archive or an OCI layout (tar or directory)."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_engine_argument, add_root_argument, add_store_arguments, store_root
from emustore.errors import EmustoreError
from emustore.api import PullOptions, Store


class StdinIsTerminal(EmustoreError):
    """`load` without -i on a terminal."""


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("load", help="load images from a docker save archive or an OCI layout into the data root")
    p.add_argument(
        "-i", "--input", default="-", metavar="FILE",
        help="archive (tar, optionally gzip/zstd/bzip2/xz compressed) or OCI layout directory; - or none: stdin",
    )
    add_root_argument(p, any_store=True)
    p.add_argument("-q", "--quiet", action="store_true", help="suppress progress output (as docker load; there is none)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pick from an OCI index (default: this machine's)")
    p.add_argument("--force", action="store_true", help="write even into a root a running dockerd owns")
    add_engine_argument(p)
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.input == "-":
        if sys.stdin.isatty():
            raise StdinIsTerminal("requested load from stdin, but stdin is empty")
        source = sys.stdin.buffer
    else:
        source = args.input
    options = PullOptions(
        platform=args.platform, force=args.force, engine=args.engine, store=args.store, namespace=args.namespace
    )
    for loaded in Store(store_root(args)).load(source, options):
        for tag in loaded.tags:
            print("Loaded image: %s" % tag, flush=True)
        if not loaded.tags:
            print("Loaded image ID: %s" % loaded.image_id, flush=True)
    return 0
