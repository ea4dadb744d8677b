"""`emustore pull`: like `docker pull`, into a data root."""

from __future__ import annotations

import argparse
import sys

from emustore.commands import add_engine_argument, add_root_argument, add_store_arguments, store_root
from emustore.progress import LineReporter, QuietReporter, Reporter, TerminalReporter
from emustore.layers.expansion import MAX_EXPANSION
from emustore.errors import ManifestError, UsageError
from emustore.layers.unprivileged import warning_line
from emustore.api import PullFailure, PullOptions, Store
from emustore.pull import DEFAULT_CONCURRENCY, PullResult
from emustore.reference import parse_reference
from emustore.registry.options import add_registry_arguments, options_from_args


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("pull", help="pull images from a registry into the data root")
    p.add_argument("references", metavar="NAME[:TAG|@DIGEST]", nargs="*", help="one or more images, pulled in turn")
    p.add_argument(
        "-f", "--file", metavar="FILE",
        help="also pull the references listed in FILE (one per line; blank lines and # comments skipped; - is stdin)",
    )
    add_root_argument(p, any_store=True)
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pick from a manifest list (default: this machine's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference at the end")
    p.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help="layers downloaded at once (default %d)" % DEFAULT_CONCURRENCY,
    )
    p.add_argument("--force", action="store_true", help="write even into a root a running dockerd owns")
    p.add_argument(
        "--max-expansion", type=int, default=MAX_EXPANSION, metavar="RATIO",
        help="refuse a layer decompressing to more than RATIO times the blob bytes received and over 1 GiB "
        "(default %d; 0: no limit)" % MAX_EXPANSION,
    )
    p.add_argument(
        "--rootless", action="store_true",
        help="mark opaque dirs with user.overlay.opaque (overlayfs userxattr, as rootless dockerd mounts) "
        "instead of trusted.overlay.opaque",
    )
    add_registry_arguments(p)
    p.add_argument(
        "--from", dest="source", metavar="TRANSPORT:PATH",
        help="pull from docker-archive:FILE, oci-archive:FILE or oci-layout:DIR instead of a registry",
    )
    p.add_argument("--blob-cache", metavar="DIR", help="keep registry blobs in DIR and reuse them (shared by any roots)")
    add_engine_argument(p)
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    references = list(args.references) + (_listed(args.file) if args.file else [])
    if not references:
        raise UsageError('"emustore pull" requires at least 1 argument (a reference, or -f FILE)')
    if args.source and len(references) > 1:
        raise UsageError("--from pulls one image: give one reference")
    if args.source and args.blob_cache:
        raise ManifestError("--blob-cache applies to registry pulls, not to --from")
    options = PullOptions(
        platform=args.platform,
        concurrency=args.concurrency, force=args.force, max_expansion=args.max_expansion, rootless=args.rootless,
        registry=None if args.source else options_from_args(args), blob_cache=args.blob_cache,
        engine=args.engine, store=args.store, namespace=args.namespace,
    )
    reporter: Reporter = QuietReporter() if args.quiet else TerminalReporter() if sys.stdout.isatty() else LineReporter()
    store = Store(store_root(args))
    if len(references) == 1:
        given = parse_reference(references[0], default_tag=False)
        if not args.quiet and given.tag is None and given.digest is None:
            print("Using default tag: latest", flush=True)
        if args.source:
            _warn_unwritten(store.pull_from(args.source, parse_reference(references[0]), options, reporter))
        else:
            _warn_unwritten(store.pull(parse_reference(references[0]), options=options, reporter=reporter))
        return 0
    failed = 0
    for outcome in store.pull_all(references, options, reporter):
        if isinstance(outcome, PullFailure):
            failed += 1
            print("emustore: %s: %s" % (outcome.reference, outcome.error), file=sys.stderr, flush=True)
        else:
            _warn_unwritten(outcome)
    if failed:
        print("emustore: %d of %d images not pulled" % (failed, len(references)), file=sys.stderr)
    return 1 if failed else 0


MAX_LIST_BYTES = 16 << 20


def _listed(path: str) -> list[str]:
    """The references of a list file: one per line, blank lines and # comments skipped (bounded read)."""
    try:
        if path == "-":
            text = sys.stdin.buffer.read(MAX_LIST_BYTES + 1)
        else:
            with open(path, "rb") as listed:
                text = listed.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise UsageError("cannot read %s: %s" % (path, exc.strerror)) from None
    if len(text) > MAX_LIST_BYTES:
        raise UsageError("%s: a reference list over %d bytes" % (path, MAX_LIST_BYTES))
    lines = (line.split("#", 1)[0].strip() for line in text.decode("utf-8", "replace").splitlines())
    return [line for line in lines if line]


def _warn_unwritten(result: PullResult) -> None:
    """The one warning of a pull without root (what it could not write, and where that is recorded)."""
    if result.unwritten_layers:
        print("emustore: " + warning_line(result.unwritten, result.unwritten_layers), file=sys.stderr)
