"""One module per CLI command; each defines `register(subparsers)` and is found automatically.

A command module adds its parser with `subparsers.add_parser(...)` and sets `func=` to a
function taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil

ROOT_ENV = "EMUSTORE_ROOT"


def add_root_argument(parser: argparse.ArgumentParser, any_store: bool = False) -> None:
    """--root DIR, defaulting to $EMUSTORE_ROOT (required when that is unset); with `any_store` (a
    command that also takes add_store_arguments) never required: store_root settles it."""
    parser.add_argument(
        "--root",
        default=os.environ.get(ROOT_ENV),
        required=not any_store and ROOT_ENV not in os.environ,
        metavar="DIR",
        help="the Docker data root (dockerd --data-root); default $%s" % ROOT_ENV,
    )


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--store docker|containerd and --namespace NS (containerd's), for every command that handles both
    stores; with them --root (added with any_store) may be left out for containerd (its default root)."""
    parser.add_argument(
        "--store", choices=("docker", "containerd"), default="docker",
        help="a Docker data root (default) or containerd's image store (content, meta.db, overlayfs snapshots)",
    )
    parser.add_argument(
        "--namespace", default="default", metavar="NS",
        help="the containerd namespace (default: default; moby: Docker's containerd store; k8s.io: kubelet's)",
    )


def store_root(args: argparse.Namespace) -> str:
    """--root, else $EMUSTORE_ROOT, else (for --store containerd only) /var/lib/containerd."""
    if args.root:
        return str(args.root)
    if args.store == "containerd":
        from emustore.api import CONTAINERD_ROOT

        return CONTAINERD_ROOT
    from emustore.errors import UsageError

    raise UsageError("the following arguments are required: --root (or $%s)" % ROOT_ENV)


ENGINE_OF_ROOT = "the root's engine (26+ if it has engine-id, else 20.10)"


def add_engine_argument(parser: argparse.ArgumentParser, default: str = ENGINE_OF_ROOT) -> None:
    """--engine VERSION: the Docker engine whose dialect to write or print (emustore/engines.py)."""
    parser.add_argument(
        "--engine",
        metavar="VERSION",
        help="write/print as this Docker engine does: 20.10, 26 or 28 (nearest dialect for others; with "
        "--store containerd, the containerd it ships: 1.6, 1.7, 2.1, also named containerd-1.6, -1.7, -2.1); "
        "default $EMUSTORE_ENGINE, else %s" % default,
    )


def register_all(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", only: str | None = None) -> None:
    """Import every command module of this package (sorted by name) and let it register; with
    `only` naming one of them, just that one (a command line runs one command: a faster start)."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    for name in [only] if only in names else names:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
