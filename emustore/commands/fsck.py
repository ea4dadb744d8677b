"""`emustore fsck`: check a data root against the format doc; `--repair` removes leftovers of interrupted writes."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.api import Store
from emustore.errors import EmustoreError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("fsck", help="check every invariant of the data root; one problem per line")
    add_root_argument(p)
    p.add_argument(
        "--repair", action="store_true",
        help="remove leftovers of interrupted writes (staging of dead pulls, loads and creates, write-sets, "
        "temp files, orphan overlay2 dirs) and nothing else; safe while pulls into this root run",
    )
    p.add_argument("--force", action="store_true", help="repair even a root a running dockerd (or containerd) owns")
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store == "containerd":
        return _containerd(args)
    store = Store(store_root(args))
    if args.repair:
        for path in store.repair(force=args.force):
            print("removed %s" % path)
    problems = store.fsck()
    for problem in problems:
        print(problem)
    dialect, told_by = store.dialect()
    # stdout stays one problem per line; what was found is said on stderr
    print("fsck: %s: %s's dialect (%s); %d problem%s" % (
        store.root, dialect, told_by, len(problems), "" if len(problems) == 1 else "s"), file=sys.stderr)
    return 1 if problems else 0


def _containerd(args: argparse.Namespace) -> int:
    """Every namespace of a containerd root; --repair removes what containerd's collector would."""
    root = store_root(args)
    images = Store(root).containerd(args.namespace)
    if args.repair:
        for path in images.repair(force=args.force):
            print("removed %s" % path)
    problems = images.fsck()
    for problem in problems:
        print(problem)
    try:
        schema = "meta.db schema %s" % images.schema()
    except EmustoreError:
        schema = "meta.db unreadable"
    print("fsck: %s: containerd root, %s; %d problem%s" % (
        root, schema, len(problems), "" if len(problems) == 1 else "s"), file=sys.stderr)
    return 1 if problems else 0
