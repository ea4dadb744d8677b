"""TLS settings per registry host from a docker certs.d folder: <dir>/<host[:port]>/{*.crt, *.cert, *.key}."""

from __future__ import annotations

import ssl
from pathlib import Path

from emustore.errors import RegistryError

DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")


def ssl_context(host: str, certs_dir: Path | None = DEFAULT_CERTS_DIR, *, verify: bool = True) -> ssl.SSLContext:
    """System roots plus the host's *.crt CAs, its *.cert/*.key client pairs; no verification if not `verify`."""
    if verify:
        context = ssl.create_default_context()
    else:  # nothing is verified, so the system roots need not be loaded (they cost ~30 ms)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    folder = certs_dir / host if certs_dir is not None else None
    if folder is None or not folder.is_dir():
        return context
    try:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".crt":
                context.load_verify_locations(cafile=str(path))
            elif path.suffix == ".cert":
                key = path.with_suffix(".key")
                if not key.is_file():
                    raise RegistryError(
                        f"missing key {key.name} for client certificate {path.name} in {folder}; "
                        "CA certificates must use the extension .crt"
                    )
                context.load_cert_chain(str(path), str(key))
            elif path.suffix == ".key" and not path.with_suffix(".cert").is_file():
                raise RegistryError(f"missing client certificate {path.stem}.cert for key {path.name} in {folder}")
    except (ssl.SSLError, OSError) as exc:
        raise RegistryError(f"cannot load TLS files for {host} from {folder}: {exc}") from None
    return context
