"""`emustore cp`: copy between the host and a container's root, like `docker cp` (no daemon)."""

from __future__ import annotations

import argparse

from emustore.commands import add_root_argument
from emustore.errors import EmustoreError
from emustore.api import Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser(
        "cp", help="copy files between a container and the host, like `docker cp`",
        description="emustore cp SRC_PATH CONTAINER:DEST_PATH  |  emustore cp CONTAINER:SRC_PATH DEST_PATH",
    )
    p.add_argument("source", metavar="SRC", help="host path, or CONTAINER:PATH")
    p.add_argument("target", metavar="DEST", help="CONTAINER:PATH, or host path")
    p.add_argument("--force", action="store_true", help="copy into a container even of a root a running dockerd owns")
    add_root_argument(p)
    p.set_defaults(func=run)


def split_argument(text: str) -> tuple[str, str]:
    """(container, path) as the docker CLI splits a cp argument; container "" for a host path
    (absolute, without ":", or starting with "." like ./file:name)."""
    if text.startswith("/"):
        return "", text
    container, sep, path = text.partition(":")
    if not sep or container.startswith("."):
        return "", text
    return container, path


def run(args: argparse.Namespace) -> int:
    (source_container, source), (target_container, target) = split_argument(args.source), split_argument(args.target)
    if source_container and target_container:
        raise EmustoreError("copying between containers is not supported")
    if not source_container and not target_container:
        raise EmustoreError("must specify at least one container source")
    if (target if source_container else source) == "-":
        raise EmustoreError("streaming a tar archive through stdin/stdout (-) is not supported")
    if not source or not target:
        raise EmustoreError("source and destination paths must not be empty")
    store = Store(args.root).containers()
    if source_container:
        store.copy_out(store.find(source_container), source, target, args.source)
    else:
        store.change(store.find(target_container), [(source, target)], [], force=args.force)
    return 0
