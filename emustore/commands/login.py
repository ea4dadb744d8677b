"""`emustore login`: like `docker login`, check credentials against a registry and save them."""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace

from emustore.errors import EmustoreError
from emustore.reference import DEFAULT_DOMAIN, Reference
from emustore.registry.credentials import HUB_SERVER, Credentials, hostname, server_key
from emustore.registry.endpoints import first_working
from emustore.registry.options import add_registry_arguments, options_from_args


class LoginError(EmustoreError):
    """Bad login flags or input."""


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("login", help="log in to a registry (saved in $DOCKER_CONFIG/config.json)")
    p.add_argument("server", nargs="?", default="", metavar="SERVER", help="registry (default: Docker Hub)")
    p.add_argument("-u", "--username", default="", help="username")
    p.add_argument("-p", "--password", default="", help="password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")
    add_registry_arguments(p, mirrors=False)
    p.set_defaults(func=run)


def registry_reference(server: str) -> Reference:
    """A reference naming the registry of a login SERVER (Docker Hub for "" and its aliases)."""
    if not server or server_key(server) == HUB_SERVER:
        return Reference(DEFAULT_DOMAIN, "library/login")
    return Reference(hostname(server), "login")


def run(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    options = replace(options_from_args(args), mirrors=())  # login talks to the registry itself
    ref = registry_reference(args.server)
    client, _ = first_working(ref, options, lambda c: c.check_login(), credentials=credentials)
    client.close()
    server = args.server or HUB_SERVER
    if options.credentials.uses_file(server):
        print(f"WARNING! Your password will be stored unencrypted in {options.credentials.path}.")
        print("Configure a credential helper to remove this warning.\n")
    options.credentials.store(server, credentials)
    print("Login Succeeded")
    return 0


def _credentials(args: argparse.Namespace) -> Credentials:
    if args.password and args.password_stdin:
        raise LoginError("--password and --password-stdin are mutually exclusive")
    username, password = args.username, args.password
    if args.password_stdin:
        if not username:
            raise LoginError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    if not username or not password:
        if not sys.stdin.isatty():
            raise LoginError("Cannot perform an interactive login from a non TTY device")
        username = username or input("Username: ").strip()
        password = password or getpass.getpass("Password: ")
    if not username or not password:
        raise LoginError("Username and password are required")
    return Credentials(username, password)
