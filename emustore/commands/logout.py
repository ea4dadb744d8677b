"""`emustore logout`: like `docker logout`, forget the saved credentials of a registry."""

from __future__ import annotations

import argparse

from emustore.registry.credentials import HUB_SERVER, CredentialStore, hostname


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", default="", metavar="SERVER", help="registry (default: Docker Hub)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    server = args.server or HUB_SERVER
    shown = server if server == HUB_SERVER else hostname(server)
    if CredentialStore().erase(server):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")
    return 0
