"""Command line: argument parsing, output and exit codes; the work happens in the library."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from emustore import __version__
from emustore.errors import EmustoreError
from emustore.progress import LineReporter, QuietReporter, Reporter
from emustore.pull import pull
from emustore.reference import parse_reference

ROOT_ENV = "EMUSTORE_ROOT"


def _root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        default=os.environ.get(ROOT_ENV),
        required=ROOT_ENV not in os.environ,
        metavar="DIR",
        help="the Docker data root to write (dockerd --data-root); default $%s" % ROOT_ENV,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emustore",
        description="Write container images into a Docker Engine 20.10 (overlay2) data root, no daemon needed.",
    )
    parser.add_argument("--version", action="version", version="emustore " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("pull", help="pull an image from a registry into the data root")
    p.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    _root_argument(p)
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pick from a manifest list (default: this machine's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference at the end")
    p.add_argument("--concurrency", type=int, default=4, metavar="N", help="layers downloaded at once (default 4)")
    p.set_defaults(func=_cmd_pull)
    return parser


def _cmd_pull(args: argparse.Namespace) -> int:
    ref = parse_reference(args.reference)
    reporter: Reporter = QuietReporter() if args.quiet else LineReporter()
    given = parse_reference(args.reference, default_tag=False)
    if not args.quiet and given.tag is None and given.digest is None:
        print("Using default tag: latest", flush=True)
    pull(ref, args.root, platform=args.platform, reporter=reporter, concurrency=args.concurrency)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EmustoreError as exc:
        print("emustore: %s" % exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("emustore: interrupted; nothing half-written was published", file=sys.stderr)
        return 130
    except OSError as exc:
        print("emustore: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
