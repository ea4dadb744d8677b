"""Path resolution inside a layer's diff dir as if it were the root (dockerd extracts chrooted).

Lexically cleaned names are resolved component by component; symlinks met on the way are
followed with the diff dir as "/", and ".." never climbs above it. Nothing resolved here
can point outside the root, whatever the layer contains.
"""

from __future__ import annotations

import errno
import os
import stat

from emustore.layers.gopath import go_clean

MAX_SYMLINKS = 40


class RootedPaths:
    """Resolves paths below `root` (bytes, absolute) with chroot semantics, caching directories."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self._dirs: dict[bytes, bytes] = {}
        self._links: dict[bytes, int] = {}  # symlinks followed to resolve a cached dir, when any

    def forget(self) -> None:
        """Drop cached resolutions (after anything was removed or replaced)."""
        self._dirs.clear()
        self._links.clear()

    def real(self, path: bytes, follow_last: bool) -> bytes:
        """The host path for `path` (any form) inside the root."""
        cleaned = go_clean(b"/" + path)
        if cleaned == b"/":
            return self.root
        parent, _, base = cleaned.rpartition(b"/")
        real_parent = self.real_dir(parent)
        if not follow_last:
            return real_parent + b"/" + base
        return self._walk([base], real_parent, self._links.get(parent, 0))[0]

    def real_dir(self, cleaned_dir: bytes) -> bytes:
        """The host path of a cleaned, rooted directory path, following every symlink.

        Iterative (a legal name can be thousands of directories deep): from the deepest
        cached ancestor down, each level resolved once and cached, with the count of links
        its resolution followed (the kernel allows MAX_SYMLINKS in one path, so does this)."""
        if cleaned_dir in (b"", b"/"):
            return self.root
        cached = self._dirs.get(cleaned_dir)
        if cached is not None:
            return cached
        below: list[tuple[bytes, bytes]] = []  # (dir, its last part), deepest first
        current = cleaned_dir
        real = self.root
        while current not in (b"", b"/"):
            known = self._dirs.get(current)
            if known is not None:
                real = known
                break
            parent, _, base = current.rpartition(b"/")
            below.append((current, base))
            current = parent
        links = self._links.get(current, 0)
        for path, base in reversed(below):
            real, links = self._walk([base], real, links)
            self._dirs[path] = real
            if links:
                self._links[path] = links
        return real

    def resolve(self, path: bytes) -> bytes:
        """The host path `path` leads to, every symlink followed inside the root and a missing
        part taken as named (what a lookup chrooted to the root reports as the path it tried)."""
        return self._walk(go_clean(b"/" + path).split(b"/"), self.root, 0, missing_ok=True)[0]

    def _walk(self, parts: list[bytes], start: bytes, links: int, missing_ok: bool = False) -> tuple[bytes, int]:
        """Follow `parts` from the host dir `start` (reached through `links` symlinks),
        resolving symlinks inside the root; the host path and the links followed in all."""
        real = start[len(self.root) :].split(b"/")[1:] if start != self.root else []
        pending = list(reversed(parts))
        while pending:
            part = pending.pop()
            if part in (b"", b"."):
                continue
            if part == b"..":
                if real:
                    real.pop()
                continue
            candidate = self.root + b"/" + b"/".join(real + [part])
            try:
                st = os.lstat(candidate)
            except FileNotFoundError:
                if not missing_ok:
                    raise
                real.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), candidate)
                target = os.readlink(candidate)
                if target.startswith(b"/"):
                    real = []
                pending.extend(reversed(target.split(b"/")))
                continue
            real.append(part)
        return self.root + b"".join(b"/" + p for p in real), links
