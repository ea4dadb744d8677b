"""`emustore create`: a stopped container, as `docker create` leaves it, in the data root."""

from __future__ import annotations

import argparse
import os

from emustore.commands import add_engine_argument, add_root_argument
from emustore.errors import EmustoreError
from emustore.api import CreateOptions, Store


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("create", help="create a new container, like `docker create`")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set environment variables")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    p.add_argument(
        "--add-file", action="append", default=[], metavar="SRC:DST",
        help="copy a host file or directory into the container's layer (like `emustore cp`)",
    )
    p.add_argument(
        "--rm-file", action="append", default=[], metavar="PATH",
        help="delete PATH in the container's layer (an overlay whiteout)",
    )
    p.add_argument("--force", action="store_true", help="write even into a root a running dockerd owns")
    add_engine_argument(p)
    add_root_argument(p)
    p._option_string_actions["--root"].required = False  # may also come last: see trailing_root
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    p.set_defaults(func=run)


def environment(entries: list[str]) -> tuple[str, ...]:
    """-e values as the docker CLI sends them: a bare K takes the caller's value, or is dropped."""
    out = []
    for entry in entries:
        if "=" in entry:
            out.append(entry)
        elif entry in os.environ:
            out.append("%s=%s" % (entry, os.environ[entry]))
    return tuple(out)


def file_pairs(specs: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for spec in specs:
        source, sep, destination = spec.rpartition(":")
        if not sep or not source or not destination:
            raise EmustoreError("--add-file wants SRC:DST, got %r" % spec)
        if not os.path.lexists(source):
            raise EmustoreError("no such file: %s" % source)
        pairs.append((source, destination))
    return pairs


def trailing_root(command: list[str], root: str | None) -> tuple[list[str], str | None]:
    """A `--root DIR` (or `--root=DIR`) after IMAGE [COMMAND…] is emustore's, not the command's."""
    if len(command) >= 2 and command[-2] == "--root":
        return command[:-2], command[-1]
    if command and command[-1].startswith("--root="):
        return command[:-1], command[-1].split("=", 1)[1]
    return command, root


def run(args: argparse.Namespace) -> int:
    command, root = trailing_root(args.command, args.root)
    if not root:
        raise EmustoreError("--root DIR (or $EMUSTORE_ROOT) is required")
    additions = file_pairs(args.add_file)
    options = CreateOptions(
        image_text=args.image,
        name=args.name,
        env=environment(args.env),
        entrypoint=args.entrypoint,
        cmd=tuple(command),
    )
    store = Store(root).containers()
    container = store.create(options, force=args.force, engine=args.engine)
    if additions or args.rm_file:
        try:
            store.change(container, additions, args.rm_file, force=args.force)
        except BaseException:
            store.remove(container)
            raise
    print(container.id, flush=True)
    return 0
