"""`emustore image prune`: like `docker image prune`, in the data root."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_root_argument
from emustore.display import human_size
from emustore.api import Store

WARNING_DANGLING = "WARNING! This will remove all dangling images."
WARNING_ALL = "WARNING! This will remove all images without at least one container associated to them."


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("image", help="manage images (prune)")
    commands = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    prune = commands.add_parser("prune", help="remove unused images")
    add_root_argument(prune)
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(func=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    if not args.force:
        sys.stdout.write("%s\nAre you sure you want to continue? [y/N] " % (WARNING_ALL if args.all else WARNING_DANGLING))
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = Store(args.root).prune(all=args.all)
    if report.records:
        lines = ["Deleted Images:"] + ["%s: %s" % (r.action.lower(), r.value) for r in report.records]
        print("\n".join(lines) + "\n")
    print("Total reclaimed space:", human_size(report.reclaimed, 4))
    return 0
