"""Command line: argument parsing, output and exit codes; the work happens in the library."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

from emustore import __version__
from emustore.commands import register_all
from emustore.errors import EmustoreError

GC_YOUNG_THRESHOLD = 50_000  # allocations between two collections of young objects (Python's default: 700)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `command` (the first argument), only that command's."""
    parser = argparse.ArgumentParser(
        prog="emustore",
        description="Write container images into a Docker (20.10, 26, 28) data root or containerd's image store, no daemon needed.",
    )
    parser.add_argument("--version", action="version", version="emustore " + __version__)
    register_all(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), only=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(given[0] if given else None).parse_args(given)
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
    except Exception as exc:  # a bug: still one line (EMUSTORE_DEBUG=1 shows the traceback)
        if os.environ.get("EMUSTORE_DEBUG"):
            raise
        print("emustore: internal error: %s: %s (EMUSTORE_DEBUG=1 shows where)" % (type(exc).__name__, exc), file=sys.stderr)
        return 70


def run() -> None:
    """The `emustore` command: main(), then exit without the interpreter's teardown (about 40 ms
    of freeing objects at exit; every file is written and closed, every thread joined by then).

    The objects of the modules imported by then are left out of garbage collection, and young
    objects are collected less often: a command's work makes few cycles, and each collection
    walks (and, in a forked worker, copies the pages of) every object it tracks."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
