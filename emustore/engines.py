"""The engine dialects: what Docker 20.10, 26 and 28 write differently for the same operation.

Facts observed with Docker 20.10.24, 26.1.5 and 28.5.2 (README "Engines"); a version between them
maps to the nearest observed dialect: up to 23 writes as 20.10, 24–26 as 26, 27 and later as 28.
Each ships a containerd (1.6, 1.7, 2.1), whose image store `--store containerd` writes
(stores/containerd/dialect.py); `containerd-1.6` … name the dialect by it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from emustore.errors import UsageError

ENGINE_ENV = "EMUSTORE_ENGINE"
CONTAINERD_PREFIX = "containerd-"
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.\d+)?")


@dataclass(frozen=True)
class Dialect:
    """One engine's way of writing a data root (each field a difference observed from 20.10)."""

    name: str  # "20.10", "26" or "28"
    tar_split_final_empty_segment: bool  # 20.10 ends a tar-split with an empty raw segment
    go122_json_escapes: bool  # tar-split names escape \b and \f as Go >= 1.22 does (not \u0008, \u000c)
    empty_xattrs: bool  # a PAX xattr with an empty value is set (20.10 drops it)
    symlink_xattrs_on_target: bool  # a symlink's PAX xattrs are set on the file it points to
    engine_id: bool  # the daemon writes engine-id (0600, a UUID) at the data root
    legacy_image_fields: bool  # image inspect has Container, ContainerConfig and VirtualSize
    # containers (docs/container-format.md §9)
    container_layout: str  # the config.v2.json and hostconfig.json fields and order of this engine
    hostconfig_mode: int  # hostconfig.json's mode (20.10: 0644)
    healthcheck_start_interval: bool  # Healthcheck.StartInterval is kept (image inspect, container config)
    oci_image_config: bool  # image inspect's Config holds the OCI image config's fields only, keys sorted, last
    no_command_error: str  # the daemon's error when neither the image nor create gives a command
    containerd: str = "1.6"  # the containerd it ships, whose image store `--store containerd` writes

    def __str__(self) -> str:
        return "Docker " + self.name


DOCKER_20_10 = Dialect(
    "20.10", True, False, False, False, False, True,
    container_layout="20.10", hostconfig_mode=0o644, healthcheck_start_interval=False, oci_image_config=False,
    no_command_error="No command specified", containerd="1.6",
)
DOCKER_26 = Dialect(
    "26", False, True, True, False, True, False,
    container_layout="26", hostconfig_mode=0o600, healthcheck_start_interval=True, oci_image_config=False,
    no_command_error="no command specified", containerd="1.7",
)
DOCKER_28 = Dialect(
    "28", False, True, True, True, True, False,
    container_layout="28", hostconfig_mode=0o600, healthcheck_start_interval=True, oci_image_config=True,
    no_command_error="no command specified", containerd="2.1",
)
DIALECTS = {dialect.name: dialect for dialect in (DOCKER_20_10, DOCKER_26, DOCKER_28)}
DEFAULT = DOCKER_20_10


def dialect_for(version: str | None) -> Dialect:
    """The dialect of engine `version` ("20.10", "26", "28.5.2", …, or "containerd-1.6", "-1.7",
    "-2.1": the Docker that ships it); None: $EMUSTORE_ENGINE or 20.10."""
    given = "" if version is not None else " (from $%s)" % ENGINE_ENV
    if version is None:
        version = os.environ.get(ENGINE_ENV) or DEFAULT.name
    if version.strip().startswith(CONTAINERD_PREFIX):
        return _containerd_dialect(version.strip().removeprefix(CONTAINERD_PREFIX), given)
    matched = _VERSION.fullmatch(version.strip())
    if matched is None:
        raise UsageError(
            "invalid engine version %r%s: expected a Docker version such as 20.10, 26 or 28.5.2" % (version, given)
        )
    major = int(matched.group(1))
    if major < 17:
        raise UsageError("unsupported engine version %r%s: the oldest dialect is 20.10" % (version, given))
    if major <= 23:
        return DOCKER_20_10
    return DOCKER_26 if major <= 26 else DOCKER_28


def requested_dialect(version: str | None) -> Dialect | None:
    """The dialect `version` or $EMUSTORE_ENGINE asks for; None when neither is given (the caller
    then goes by the root: stores/docker/dialect.py)."""
    if version is None and not os.environ.get(ENGINE_ENV):
        return None
    return dialect_for(version)


def _containerd_dialect(version: str, given: str) -> Dialect:
    """The Docker dialect shipping containerd `version` (1.6 → 20.10, 1.7 → 26, 2.x → 28)."""
    matched = _VERSION.fullmatch(version)
    if matched is None or matched.group(1) not in ("1", "2") or (matched.group(1) == "1" and int(matched.group(2) or 0) < 6):
        raise UsageError(
            "invalid containerd version %r%s: expected containerd-1.6, containerd-1.7 or containerd-2.1" % (version, given)
        )
    if matched.group(1) == "2":
        return DOCKER_28
    return DOCKER_26 if int(matched.group(2) or 0) >= 7 else DOCKER_20_10
