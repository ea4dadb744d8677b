"""Which engine's dialect a data root is in, and the dialect a command writes or prints.

A root an engine 26 or later has used has `engine-id` at its top (the daemon writes it at start;
20.10 never does). 26 and 28 write the same image store; their containers tell them apart (28's
config.v2.json has ImagePlatform and WritableCgroups, 26's has ImageManifest without them, and
each engine rewrites every container in its own dialect when it starts). A 26+ root whose
containers do not tell is taken as 28's (README "Engines").
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from emustore import safejson
from emustore.engines import DEFAULT, DOCKER_26, DOCKER_28, Dialect, requested_dialect

ENGINE_ID = "engine-id"
MAX_CONTAINER_CONFIG = 1 << 20  # a config.v2.json larger than this tells nothing
CONTAINERS_READ = 8  # at most this many containers are read for a hint


def root_dialect(root: str | os.PathLike[str]) -> Dialect:
    """The dialect of the engine that last used `root` (20.10 for a root without `engine-id`)."""
    return explained_dialect(root)[0]


def explained_dialect(root: str | os.PathLike[str]) -> tuple[Dialect, str]:
    """root_dialect, with what told it (as fsck reports it)."""
    root = Path(root)
    try:
        if not stat.S_ISREG(os.lstat(root / ENGINE_ID).st_mode):
            return DEFAULT, "no engine-id file"
    except OSError:
        return DEFAULT, "no engine-id"
    for keys in _container_keys(root / "containers"):
        if "ImagePlatform" in keys or "WritableCgroups" in keys:
            return DOCKER_28, "engine-id, and 28's containers"
        if "ImageManifest" in keys:
            return DOCKER_26, "engine-id, and 26's containers"
    return DOCKER_28, "engine-id (26 or later; no container tells 26 from 28, which write the same image store)"


def _container_keys(containers: Path) -> list[set[str]]:
    """The top-level keys of the first few readable config.v2.json files (by container id)."""
    try:
        entries = sorted(os.listdir(containers))[:CONTAINERS_READ]
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            with open(containers / entry / "config.v2.json", "rb", opener=_no_follow) as file:
                doc = safejson.loads(file.read(MAX_CONTAINER_CONFIG + 1))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            found.append(set(doc))
    return found


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def chosen_dialect(engine: str | Dialect | None, root: str | os.PathLike[str]) -> Dialect:
    """The dialect asked for (a Dialect, an engine version, or $EMUSTORE_ENGINE), else the root's."""
    if isinstance(engine, Dialect):
        return engine
    return requested_dialect(engine) or root_dialect(root)
