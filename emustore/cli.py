"""Command line: argument parsing, output and exit codes; the work happens in the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emustore import __version__
from emustore.commands import register_all
from emustore.errors import EmustoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emustore",
        description="Write container images into a Docker Engine 20.10 (overlay2) data root, no daemon needed.",
    )
    parser.add_argument("--version", action="version", version="emustore " + __version__)
    register_all(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
