"""How to reach registries: mirrors, insecure registries, certs.d, credentials, retries (dockerd's options)."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from emustore import safejson
from emustore.errors import EmustoreError
from emustore.registry.credentials import CredentialStore
from emustore.registry.retry import RetryPolicy
from emustore.registry.stall import DEFAULT_STALL_LIMIT, STALL_ENV, StallRule, parse_stall_limit
from emustore.registry.tls import DEFAULT_CERTS_DIR

DEFAULT_INSECURE = ("127.0.0.0/8", "::1/128")  # dockerd always treats loopback as insecure


class OptionsError(EmustoreError):
    """A registry option or daemon.json-style config file that is not valid."""


@dataclass(frozen=True)
class RegistryOptions:
    """Everything a pull needs to know about registries besides the reference; one object, passed down."""

    mirrors: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = DEFAULT_INSECURE
    certs_dir: Path | None = DEFAULT_CERTS_DIR
    credentials: CredentialStore = field(default_factory=CredentialStore)
    retry: RetryPolicy = RetryPolicy()
    timeout: float = 30.0
    stall: StallRule | None = StallRule()

    def is_insecure(self, host: str) -> bool:
        """dockerd's rule: the host[:port] is listed, or its IP (localhost: 127.0.0.1) is in a listed CIDR."""
        if host in self.insecure_registries:
            return True
        address = _address_of(host)
        if address is None:
            return False
        for entry in self.insecure_registries:
            if "/" in entry and address in ipaddress.ip_network(entry, strict=False):
                return True
        return False


def validate_mirror(url: str) -> str:
    """A mirror URL as dockerd accepts it (http(s)://host[:port][/]), without the trailing slash."""
    scheme, sep, rest = url.partition("://")
    host = rest.rstrip("/")
    if not sep or scheme not in ("http", "https") or not host or "/" in host or "?" in host or "@" in host:
        raise OptionsError(f"invalid mirror: {url!r} is not a valid URI (want http(s)://host[:port])")
    return f"{scheme}://{host}"


def validate_insecure(entry: str) -> str:
    """An insecure registry entry: host[:port] or a CIDR."""
    if "://" in entry:
        raise OptionsError(f"insecure registry {entry} should not contain '://'")
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise OptionsError(f"insecure registry {entry} is not a valid CIDR or host[:port]") from None
    return entry


def load_daemon_config(path: Path) -> tuple[list[str], list[str]]:
    """(registry-mirrors, insecure-registries) from a daemon.json-style file; other keys are ignored."""
    try:
        doc = safejson.loads(path.read_bytes())
    except OSError as exc:
        raise OptionsError(f"cannot read config file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise OptionsError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OptionsError(f"config file {path} is not a JSON object")
    lists = []
    for key in ("registry-mirrors", "insecure-registries"):
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OptionsError(f"config file {path}: {key} must be a list of strings")
        lists.append(value)
    return lists[0], lists[1]


def add_registry_arguments(parser: argparse.ArgumentParser, *, mirrors: bool = True) -> None:
    """The registry flags shared by pull and login (named like dockerd's); login has no mirrors."""
    if mirrors:
        parser.add_argument(
            "--registry-mirror", action="append", default=[], metavar="URL",
            help="preferred Docker Hub mirror (repeatable)",
        )
    parser.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
        help="registry reached without TLS verification, then plain HTTP (repeatable; CIDR allowed)",
    )
    parser.add_argument(
        "--certs-dir", type=Path, default=DEFAULT_CERTS_DIR, metavar="DIR",
        help="per-registry ca.crt, client.cert, client.key in DIR/HOST[:PORT]/ (default %s)" % DEFAULT_CERTS_DIR,
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="daemon.json-style file: registry-mirrors, insecure-registries",
    )
    parser.add_argument(
        "--stall-limit", default=os.environ.get(STALL_ENV, DEFAULT_STALL_LIMIT), metavar="BYTES/SECONDS",
        help="fail a transfer receiving fewer than BYTES in SECONDS of waiting (default $%s, else %s; off: none)"
        % (STALL_ENV, DEFAULT_STALL_LIMIT),
    )


def options_from_args(args: argparse.Namespace) -> RegistryOptions:
    """RegistryOptions from add_registry_arguments' flags, the --config file's lists coming first."""
    mirrors, insecure = load_daemon_config(args.config) if args.config is not None else ([], [])
    mirrors = [validate_mirror(m) for m in mirrors + getattr(args, "registry_mirror", [])]
    insecure = [validate_insecure(i) for i in insecure + args.insecure_registry]
    try:
        stall = parse_stall_limit(args.stall_limit)
    except ValueError as exc:
        raise OptionsError(f"--stall-limit (or ${STALL_ENV}): {exc}") from None
    return RegistryOptions(
        mirrors=tuple(dict.fromkeys(mirrors)),
        insecure_registries=DEFAULT_INSECURE + tuple(insecure),
        certs_dir=args.certs_dir,
        stall=stall,
    )


def _address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        name = "127.0.0.1"
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None
