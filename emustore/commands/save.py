"""`emustore save`: like `docker save`, images of the data root to a docker-archive (or OCI archive)."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.errors import EmustoreError
from emustore.api import Store
from emustore.save import DOCKER, OCI


class TerminalOutput(EmustoreError):
    """`save` without -o on a terminal."""


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("save", help="save images of the data root to a tar archive (streamed to STDOUT by default)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="NAME[:TAG], NAME@DIGEST, or an image id (prefix)")
    add_root_argument(p, any_store=True)
    p.add_argument("-o", "--output", metavar="FILE", help="write to a file, instead of STDOUT")
    p.add_argument(
        "--format", choices=(DOCKER, OCI), default=DOCKER,
        help="docker: the docker save layout (default); oci: an OCI image layout archive (docker load reads it too)",
    )
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(store_root(args))
    save = store.containerd(args.namespace).save if args.store == "containerd" else store.save
    if args.output and args.output != "-":
        save(args.images, args.output, args.format)
        return 0
    if sys.stdout.isatty():
        raise TerminalOutput("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    save(args.images, sys.stdout.buffer, args.format)
    sys.stdout.buffer.flush()
    return 0
