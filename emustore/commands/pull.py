"""`emustore pull`: like `docker pull`, into a data root."""

from __future__ import annotations

import argparse

from emustore.commands import add_root_argument
from emustore.progress import LineReporter, QuietReporter, Reporter
from emustore.pull import DEFAULT_CONCURRENCY, pull
from emustore.reference import parse_reference


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("pull", help="pull an image from a registry into the data root")
    p.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    add_root_argument(p)
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pick from a manifest list (default: this machine's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference at the end")
    p.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help="layers downloaded at once (default %d)" % DEFAULT_CONCURRENCY,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    given = parse_reference(args.reference, default_tag=False)
    reporter: Reporter = QuietReporter() if args.quiet else LineReporter()
    if not args.quiet and given.tag is None and given.digest is None:
        print("Using default tag: latest", flush=True)
    pull(parse_reference(args.reference), args.root, platform=args.platform, reporter=reporter, concurrency=args.concurrency)
    return 0
