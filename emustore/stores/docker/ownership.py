"""Is a data root in use by a running dockerd? Writing under a live daemon corrupts its state.

Two signs are looked for: a live `dockerd` process whose data root (from `--data-root`/`-g`/
`--graph`, else its config file's `data-root`, else /var/lib/docker) is this root, and the
root's `overlay2/` bind-mounted onto itself, which the overlay2 driver does at start (a killed
dockerd leaves that mount behind, so it is reported as such).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from emustore.errors import StoreError

DEFAULT_DATA_ROOT = "/var/lib/docker"
DEFAULT_CONFIG_FILE = "/etc/docker/daemon.json"
_ROOT_FLAGS = ("--data-root", "-g", "--graph")


class RootInUse(StoreError):
    """The data root belongs to a running dockerd."""


def check_not_owned(root: str | os.PathLike[str], force: bool = False) -> None:
    """Raise RootInUse, saying how it was detected, unless `force` or no dockerd owns `root`."""
    if force:
        return
    how = dockerd_owner(root)
    if how is not None:
        raise RootInUse("%s is in use by a running dockerd (%s); stop it first or pass --force" % (root, how))


def dockerd_owner(root: str | os.PathLike[str]) -> str | None:
    """How a dockerd was found to own `root`, or None when none does."""
    real = os.path.realpath(root)
    for pid, data_root, source in _dockerd_data_roots():
        if data_root == real:
            return "pid %d has data root %s, from %s" % (pid, data_root, source)
    overlay = os.path.join(real, "overlay2")
    if _self_bind_mounted(overlay):
        return "%s is bind-mounted onto itself as dockerd's overlay2 driver does; a killed dockerd leaves that too" % overlay
    return None


def _dockerd_data_roots() -> Iterator[tuple[int, str, str]]:
    """(pid, resolved data root, where it came from) of every visible dockerd process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = [os.fsdecode(a) for a in Path(entry.path, "cmdline").read_bytes().split(b"\0")[:-1]]
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != "dockerd":
            continue
        pid = int(entry.name)
        try:
            cwd = os.readlink(os.path.join(entry.path, "cwd"))
        except OSError:  # another user's process: relative paths are resolved from /
            cwd = "/"
        value = _flag(argv, _ROOT_FLAGS)
        source = "/proc/%d/cmdline" % pid
        if value is None:
            config = _flag(argv, ("--config-file",)) or DEFAULT_CONFIG_FILE
            value = _config_data_root(os.path.join(cwd, config))
            source = config if value is not None else "the default"
            value = value or DEFAULT_DATA_ROOT
        yield pid, os.path.realpath(os.path.join(cwd, value)), source


def _flag(argv: list[str], names: tuple[str, ...]) -> str | None:
    """The last value given to any of `names` (`--x v` or `--x=v`)."""
    found = None
    for i, arg in enumerate(argv[1:], start=1):
        name, eq, value = arg.partition("=")
        if name in names:
            if eq:
                found = value
            elif i + 1 < len(argv):
                found = argv[i + 1]
    return found


def _config_data_root(path: str) -> str | None:
    try:
        doc = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    value = doc.get("data-root") or doc.get("graph") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None


def _self_bind_mounted(path: str) -> bool:
    """True when mountinfo lists `path` as a bind mount of a directory ending in `path` (itself)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4 and _unescape(fields[4]) == path:
            source = _unescape(fields[3])
            if source != "/" and path.endswith(source):
                return True
    return False


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, ...)."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")
