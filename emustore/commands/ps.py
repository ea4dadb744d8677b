"""`emustore ps`: list containers with docker's columns, their status as config.v2.json records it."""

from __future__ import annotations

import argparse
import re
import time
from typing import TYPE_CHECKING

from emustore.commands import add_root_argument
from emustore.digest import short_id
from emustore.display import since, table
from emustore.errors import EmustoreError
from emustore.api import Store

if TYPE_CHECKING:
    from emustore.stores.docker.catalog import Catalog
    from emustore.stores.docker.containers import Container

HEADER = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_/.:=@%+,-]+")


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("ps", help="list containers, like `docker ps`")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    add_root_argument(p)
    p.set_defaults(func=run)


def _word(arg: str) -> str:
    return arg if _PLAIN_WORD.fullmatch(arg) else "'" + arg.replace("'", "'\\''") + "'"


def command_text(container: Container) -> str:
    """Path and Args as `docker ps` shows them: arguments with spaces or specials in single quotes."""
    args = container.doc.get("Args") or []
    return " ".join([str(container.doc.get("Path", ""))] + [_word(str(a)) for a in args])


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def image_text(container: Container, catalog: Catalog, no_trunc: bool) -> str:
    """Config.Image while it still names the container's image, else the image id."""
    typed = str((container.doc.get("Config") or {}).get("Image", ""))
    try:
        if typed and catalog.resolve(typed).id == container.image_id:
            return typed
    except EmustoreError:
        pass
    return container.image_id if no_trunc else short_id(container.image_id)


def created_text(container: Container, now: float) -> str:
    """CREATED: the CLI counts from the API's whole-second Created."""
    created = container.created
    return "" if created is None else since(created, now)


def rows(containers: list[Container], catalog: Catalog, no_trunc: bool, now: float) -> list[tuple[str, ...]]:
    """The table's rows at the time `now`."""
    out: list[tuple[str, ...]] = []
    for container in containers:
        command = command_text(container)
        out.append((
            container.id if no_trunc else short_id(container.id),
            image_text(container, catalog, no_trunc),
            '"%s"' % (command if no_trunc else ellipsis(command, 20)).replace("\\", "\\\\").replace('"', '\\"'),
            created_text(container, now),
            container.status(now),
            "",
            container.name,
        ))
    return out


def run(args: argparse.Namespace) -> int:
    store = Store(args.root)
    containers = [c for c in store.containers().list() if args.all or c.running]
    if args.quiet:
        for container in containers:
            print(container.id if args.no_trunc else short_id(container.id))
        return 0
    print(table(HEADER, rows(containers, store.catalog(), args.no_trunc, time.time())), end="")
    return 0
