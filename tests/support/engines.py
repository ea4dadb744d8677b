"""The Docker engines the oracle tiers run: Debian 12's 20.10 and the cached 26 and 28.

scripts/fetch-engines.sh (run by `make setup`) puts 26 and 28 into the engine cache:
`$EMUSTORE_ENGINE_CACHE/<major>/` (default ~/.cache/emustore/engines/<major>/) with `root/` (the
extracted packages), `bin/` (the daemon's PATH: their containerd, shim, ctr, docker-proxy; Debian
12's runc; tini-static as docker-init) and `VERSIONS`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ENGINES = ("20.10", "26", "28")
SYSTEM_DOCKERD = Path("/usr/sbin/dockerd")
FETCH_HINT = "`make setup` fetches it: scripts/fetch-engines.sh"
SYSTEM_HINT = "`make setup` installs Debian's docker.io"


def engine_cache() -> Path:
    """Where fetch-engines.sh keeps the engines (EMUSTORE_ENGINE_CACHE overrides the default)."""
    configured = os.environ.get("EMUSTORE_ENGINE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "emustore" / "engines"


@dataclass(frozen=True)
class Engine:
    """One engine: its dockerd, the directory put first on the daemon's PATH (None: the system's
    own containerd and runc) and the extra daemon flags it needs."""

    version: str
    dockerd: Path
    path_dir: Path | None
    versions_file: Path | None

    @property
    def flags(self) -> tuple[str, ...]:
        # 27 and later add ip6tables rules by default: never touch the host's firewall
        return () if self.path_dir is None else ("--ip6tables=false",)

    def versions(self) -> str:
        """The exact versions, one line ("docker.io 26.1.5+dfsg1-9+deb13u1+b1 containerd …")."""
        if self.versions_file is None:
            return subprocess.run([str(self.dockerd), "--version"], capture_output=True, text=True).stdout.strip()
        return " ".join(self.versions_file.read_text().split())


def find_engine(version: str) -> Engine:
    """The engine `version` ("20.10", "26", "28"); it may be missing (see `missing`)."""
    if version not in ENGINES:
        raise ValueError(f"unknown engine {version!r} (known: {', '.join(ENGINES)})")
    if version == "20.10":
        return Engine(version, SYSTEM_DOCKERD, None, None)
    home = engine_cache() / version
    return Engine(version, home / "root" / "usr" / "sbin" / "dockerd", home / "bin", home / "VERSIONS")


def missing(found: Engine) -> str | None:
    """Why `found` cannot run here, or None."""
    if not (found.dockerd.is_file() and os.access(found.dockerd, os.X_OK)):
        hint = SYSTEM_HINT if found.versions_file is None else FETCH_HINT
        return f"dockerd {found.version} not found at {found.dockerd} ({hint})"
    if found.versions_file is not None and not found.versions_file.is_file():
        return f"dockerd {found.version} incomplete: no {found.versions_file} ({FETCH_HINT})"
    return None
