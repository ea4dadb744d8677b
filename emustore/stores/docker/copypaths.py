"""`docker cp`'s path rules (CLI 20.10 with dockerd's archive API), on either side of a copy.

A SRC names what is copied and under which name. Its last component is kept as it is (a symlink
is copied as a symlink) unless SRC ends in "/" (followed; the name stays the one given) or in
"/." (the dir's contents, without a name of their own; the root is copied that way too). A DEST
decides where that lands (`placement`): in an existing dir under that name, or as DEST itself
(its last component, if a symlink, is followed first). Container paths are cleaned lexically,
then resolved inside the container (`LayerStack.resolve`: symlinks followed with its root as
"/"); host paths are resolved by the host, as the CLI resolves them. Every name that comes out
is one path component, or "." (into the dir itself): never "..".
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emustore.stores.docker.containerfs import ContainerPathError, LayerStack, PathError, absolute, clean

CONTENTS = "."
MAX_DEST_LINKS = 10  # the CLI follows a host DEST symlink this many times


class CopyError(PathError):
    """A copy that cannot be done as asked."""


@dataclass(frozen=True)
class HostSource:
    path: Path  # where the copied entry is (parents resolved; itself a symlink when not followed)
    is_dir: bool
    name: str  # one component, or CONTENTS


@dataclass(frozen=True)
class ContainerSource:
    rel: PurePosixPath  # resolved in the container
    is_dir: bool
    name: str


@dataclass(frozen=True)
class Target:
    """DEST as the CLI stats it: a clean absolute path (its side's), after a last symlink."""

    path: str
    exists: bool
    is_dir: bool
    asserts_dir: bool  # DEST ended in "/" or "/."


def _flags(text: str) -> tuple[bool, bool]:
    """(ends with "/", its last element is "."), as the CLI tests a path."""
    trimmed = text.rstrip("/")
    return text.endswith("/"), bool(trimmed) and trimmed.rsplit("/", 1)[-1] == "."


def _component(name: str) -> str:
    """`name` if it can be a single entry name below a dir (the guard of every copy)."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise CopyError("not a usable name for a copy: %r" % name)
    return name


def placement(target: Target, source_is_dir: bool, name: str, shown: str) -> tuple[str, str]:
    """(the dir to extract into, the name the copy takes there: a component or CONTENTS)."""
    if target.exists and target.is_dir:
        return target.path, name if name == CONTENTS else _component(name)
    if target.exists and source_is_dir:
        raise CopyError("cannot copy a directory onto a file: %s" % shown)
    if not target.exists and target.asserts_dir and not source_is_dir:
        raise CopyError("no such directory: %s" % shown)
    return posixpath.dirname(target.path), _component(posixpath.basename(target.path))


# the host side


def host_source(text: str) -> HostSource:
    """SRC on the host: parents resolved by the host (as the CLI does), the last one kept."""
    trailing, current = _flags(text)
    head, base = os.path.split(text)
    try:
        real_dir = os.path.realpath(head or ".", strict=True)
        path = os.path.normpath(os.path.join(real_dir, base)) if base else real_dir
        st = os.lstat(path)
    except OSError as exc:
        raise CopyError("%s: %s" % (exc.strerror, text)) from None
    is_dir = stat.S_ISDIR(st.st_mode)
    if (trailing or current) and not is_dir:
        raise CopyError("not a directory: %s" % text)
    if current or path == "/":
        name = CONTENTS
    elif base not in ("", ".", ".."):
        name = base
    else:
        given = os.path.basename(text.rstrip("/"))
        name = given if given not in ("", ".", "..") else os.path.basename(path)
    return HostSource(Path(path), is_dir, name)


def host_target(text: str) -> Target:
    """DEST on the host: absolute and clean, a last symlink followed (up to 10 times)."""
    trailing, current = _flags(text)
    asserts_dir = trailing or current
    path = os.path.abspath(text)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise CopyError("invalid output path: directory %s does not exist" % parent)
    for _ in range(MAX_DEST_LINKS + 1):
        try:
            st = os.lstat(path + "/" if asserts_dir and path != "/" else path)
        except FileNotFoundError:
            if not os.path.isdir(os.path.dirname(path)):
                raise CopyError("not a directory: %s" % os.path.dirname(path)) from None
            return Target(path, False, False, asserts_dir)
        except OSError as exc:
            raise CopyError("%s: %s" % (exc.strerror, text)) from None
        if not stat.S_ISLNK(st.st_mode):
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise CopyError("destination must be a directory or a regular file: %s" % text)
            return Target(path, True, stat.S_ISDIR(st.st_mode), asserts_dir)
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    raise CopyError("too many symlinks in %s" % text)


def host_extract_dir(path: str) -> Path:
    """The host dir a copy is extracted into (the host resolves it); it must exist."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise CopyError("not a directory: %s" % path)
    return Path(real)


# the container side


def container_source(stack: LayerStack, text: str, shown: str) -> ContainerSource:
    """SRC in the container: cleaned, then resolved inside it."""
    trailing, current = _flags(text)
    cleaned = clean(text)
    contents = current or not cleaned.parts
    rel = stack.resolve(text, follow_last=trailing or contents)
    found = stack.lookup(rel)
    if found is None:
        raise CopyError("No such container:path: %s" % shown)
    is_dir = stat.S_ISDIR(found.lstat().st_mode)
    if (trailing or contents) and not is_dir:
        raise CopyError("not a directory: %s" % shown)
    return ContainerSource(rel, is_dir, CONTENTS if contents else cleaned.name)


def container_target(stack: LayerStack, text: str) -> Target:
    """DEST in the container: cleaned, parents resolved inside it, a last symlink followed once."""
    trailing, current = _flags(text)
    asserts_dir = trailing or current
    path = absolute(clean(text))
    found = stack.lookup(stack.resolve(text, follow_last=asserts_dir))
    if found is not None and found.is_symlink():
        link = os.readlink(found)
        path = absolute(clean(link if link.startswith("/") else posixpath.join(posixpath.dirname(path), link)))
        found = stack.lookup(stack.resolve(path))
    if found is None:
        return Target(path, False, False, asserts_dir)
    mode = found.lstat().st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise CopyError("destination must be a directory or a regular file: %s" % text)
    return Target(path, True, stat.S_ISDIR(mode), asserts_dir)


def container_extract_dir(stack: LayerStack, path: str) -> PurePosixPath:
    """The container dir a copy is extracted into, resolved inside it; it must be a dir."""
    rel = stack.resolve(path, follow_last=True)
    found = stack.lookup(rel)
    if found is None:
        raise ContainerPathError("Could not find the file %s in container" % path)
    if not stat.S_ISDIR(found.lstat().st_mode):
        raise ContainerPathError("extraction point is not a directory: %s" % path)
    return rel
