"""The overlay mount dockerd's overlay2 driver performs for a layer dir, and one to look with.

dockerd (daemon/graphdriver/overlay2, `Get`) mounts overlay2/<id>/merged from the dir's `lower`
file: each `l/<LINKID>` joined to the driver home (overlay2/), then either, when the dir has a
`committed` file, `lowerdir=<id>/diff:<lowers>` (read-only), or `lowerdir=<lowers>,upperdir=
<id>/diff,workdir=<id>/work`. The options start with `index=off,` when the kernel's overlay module
has an `index` parameter and `userxattr,` for a rootless daemon. When the options are longer than
a page minus one byte, it uses the `l/` paths as they are in `lower`, relative to overlay2/, with
`<id>/diff` and `<id>/work`, and mounts from a child process that chdirs into overlay2/ first.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from emustore.errors import EmustoreError, UsageError
from emustore.fsck.findings import is_real_dir

INDEX_PARAMETER = "/sys/module/overlay/parameters/index"
LINK_ID_PLACEHOLDER = "<INIT-LINK>"
ID_PLACEHOLDER = "<CONTAINER-LAYER-ID>"
LOOK_DIR = "/mnt/emustore-look"


def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def kernel_has_index() -> bool:
    """What dockerd checks at start to decide on `index=off`."""
    return os.path.exists(INDEX_PARAMETER)


@dataclass(frozen=True)
class OverlayMount:
    """The mount of overlay2/<dir_id> as dockerd builds it."""

    home: str  # the driver home, <root>/overlay2
    dir_id: str
    lower: str  # the dir's `lower` file as it is: l/<LINKID>:l/<LINKID>…
    readonly: bool  # the dir has `committed`
    index_off: bool
    userxattr: bool
    real_length: int | None = None  # the options' length with real ids where dir_id/lower hold placeholders

    def _options(self, relative: bool) -> str:
        prefix = ("index=off," if self.index_off else "") + ("userxattr," if self.userxattr else "")
        lowers = self.lower if relative else ":".join(posixpath.join(self.home, e) for e in self.lower.split(":"))
        base = self.dir_id if relative else posixpath.join(self.home, self.dir_id)
        if self.readonly:
            return "%slowerdir=%s/diff:%s" % (prefix, base, lowers)
        return "%slowerdir=%s,upperdir=%s/diff,workdir=%s/work" % (prefix, lowers, base, base)

    @property
    def absolute_length(self) -> int:
        return self.real_length if self.real_length is not None else len(self._options(False))

    @property
    def relative(self) -> bool:
        """Too long for one page: dockerd switches to paths relative to overlay2/ (and a chdir)."""
        return self.absolute_length > page_size() - 1

    @property
    def options(self) -> str:
        """The mount data dockerd passes to mount(2)."""
        return self._options(self.relative)

    @property
    def target(self) -> str:
        merged = posixpath.join(self.dir_id, "merged")
        return merged if self.relative else posixpath.join(self.home, merged)

    def lowerdirs(self) -> list[str]:
        """The lowerdir elements, topmost first, as dockerd writes them."""
        return self.options.split("lowerdir=", 1)[1].split(",", 1)[0].split(":")

    def command(self) -> str:
        """The mount as a shell command (dockerd calls mount(2) itself)."""
        line = "mount -t overlay overlay -o %s %s" % (shlex.quote(self.options), shlex.quote(self.target))
        return "cd %s && %s" % (shlex.quote(self.home), line) if self.relative else line


def container_mount(home: str, dir_id: str, lower: str | None, committed: bool, userxattr: bool) -> OverlayMount | None:
    """The mount of an existing layer dir; None for a dir without `lower` (dockerd uses diff/ as is)."""
    if not lower:
        return None
    return OverlayMount(home, dir_id, lower, committed, kernel_has_index(), userxattr)


def new_container_mount(home: str, top_link: str, top_lower: str | None, userxattr: bool) -> OverlayMount:
    """The mount of a container created from an image whose top layer has `top_link`: its read-write
    layer's `lower` is the init layer's link, the image's top link, then the top layer's `lower`."""
    lower = ":".join(["l/" + LINK_ID_PLACEHOLDER, "l/" + top_link] + ([top_lower] if top_lower else []))
    real = OverlayMount(home, "0" * 64, lower.replace(LINK_ID_PLACEHOLDER, "A" * 26), False, kernel_has_index(), userxattr)
    return OverlayMount(home, ID_PLACEHOLDER, lower, False, real.index_off, userxattr, real.absolute_length)


@dataclass(frozen=True)
class LookMount:
    """A read-only mount of the diff `top_diff` (relative to `home`) over the `lower` links, for a
    reader (root) to look at; a bind mount when nothing is below."""

    home: str
    top_diff: str
    lower: str | None
    userxattr: bool

    def _options(self, relative: bool) -> str:
        prefix = "ro," + ("userxattr," if self.userxattr else "")
        if relative:
            return prefix + "lowerdir=" + ":".join([self.top_diff, self.lower or ""])
        elements = [self.top_diff] + (self.lower or "").split(":")
        return prefix + "lowerdir=" + ":".join(posixpath.join(self.home, e) for e in elements)

    @property
    def relative(self) -> bool:
        return bool(self.lower) and len(self._options(False)) > page_size() - 1

    def argv(self, target: str) -> list[str]:
        if not self.lower:
            return ["mount", "--bind", "-o", "ro", posixpath.join(self.home, self.top_diff), target]
        return ["mount", "-t", "overlay", "overlay", "-o", self._options(self.relative), target]

    def command(self, target: str = LOOK_DIR) -> str:
        """The shell line: make the dir, (cd overlay2/ when the options are long,) mount."""
        line = " ".join(shlex.quote(arg) for arg in self.argv(target))
        cd = "cd %s && " % shlex.quote(self.home) if self.relative else ""
        return "mkdir -p %s && %s%s" % (shlex.quote(target), cd, line)

    def run(self, target: Path) -> None:
        """Mount it at `target`, an empty directory (root only); one-line errors."""
        if os.geteuid() != 0:
            raise UsageError("--mount needs root (it mounts overlay read-only)")
        if not is_real_dir(target) or os.listdir(target):
            raise UsageError("--mount %s: not an empty directory" % target)
        try:
            result = subprocess.run(self.argv(str(target.absolute())), cwd=self.home if self.relative else None,
                                    capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmustoreError("mount: %s" % exc) from None
        if result.returncode != 0:
            raise EmustoreError("mount failed: %s" % " ".join(result.stderr.split()))
