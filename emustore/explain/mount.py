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
from dataclasses import dataclass

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


def look_command(home: str, top_diff: str, lower: str | None, userxattr: bool, target: str = LOOK_DIR) -> str:
    """A read-only mount of the stack whose top is `top_diff` (a dir under `home`) with the `lower`
    links below it, for a reader (root) to look at; a bind mount when there is nothing below."""
    quoted = shlex.quote(target)
    if not lower:
        return "mkdir -p %s && mount --bind -o ro %s %s" % (quoted, shlex.quote(posixpath.join(home, top_diff)), quoted)
    prefix = "ro," + ("userxattr," if userxattr else "")
    absolute = [posixpath.join(home, top_diff)] + [posixpath.join(home, e) for e in lower.split(":")]
    options = prefix + "lowerdir=" + ":".join(absolute)
    if len(options) <= page_size() - 1:
        return "mkdir -p %s && mount -t overlay overlay -o %s %s" % (quoted, shlex.quote(options), quoted)
    options = prefix + "lowerdir=" + ":".join([top_diff, lower])
    return "mkdir -p %s && cd %s && mount -t overlay overlay -o %s %s" % (quoted, shlex.quote(home), shlex.quote(options), quoted)
