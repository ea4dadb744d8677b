"""`emustore fsck`: check a data root against the format doc; `--repair` removes leftovers of interrupted writes."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument, add_store_arguments, store_root
from emustore.api import ContainerdImages, Store
from emustore.errors import EmustoreError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("fsck", help="check every invariant of the data root; one problem per line")
    add_root_argument(p, any_store=True)
    p.add_argument(
        "--repair", action="store_true",
        help="remove leftovers of interrupted writes (staging of dead pulls, loads and creates, write-sets, "
        "temp files, orphan overlay2 dirs) and nothing else; safe while pulls into this root run",
    )
    p.add_argument("--force", action="store_true", help="repair even a root a running dockerd (or containerd) owns")
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(store_root(args))
    checked: Store | ContainerdImages = store.containerd(args.namespace) if args.store == "containerd" else store
    if args.repair:
        for path in checked.repair(force=args.force):
            print("removed %s" % path)
    problems = checked.fsck()
    for problem in problems:
        print(problem)
    # stdout stays one problem per line; what was found is said on stderr
    print("fsck: %s: %s; %d problem%s" % (
        store.root, _kind(checked), len(problems), "" if len(problems) == 1 else "s"), file=sys.stderr)
    return 1 if problems else 0


def _kind(checked: Store | ContainerdImages) -> str:
    """What the root is: a Docker root's dialect and what told it, or a containerd root's schema."""
    if isinstance(checked, Store):
        dialect, told_by = checked.dialect()
        return "%s's dialect (%s)" % (dialect, told_by)
    try:
        return "containerd root, meta.db schema %s" % checked.schema()
    except EmustoreError:
        return "containerd root, meta.db unreadable"
