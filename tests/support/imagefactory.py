"""The image factory: a busybox base and FACTORY_SUITE, images covering every layer feature.

Build blocks live in tarlayer (LayerBuilder) and imagebuild (ImageBuilder, IndexBuilder, push);
they are re-exported here so tests import one module. Every builder is deterministic: the same
call gives the same blob, config and manifest digests in every run.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tests.support.imagebuild import (
    Compression,
    EmptyHistory,
    Format,
    ImageBuilder,
    IndexBuilder,
    Layer,
    PushedImage,
    compress,
    twin_maps,
)
from tests.support.tarlayer import EMPTY_LAYER, LayerBuilder

__all__ = [
    "BUSYBOX",
    "BUSYBOX_APPLETS",
    "Buildable",
    "Compression",
    "EMPTY_LAYER",
    "EmptyHistory",
    "FACTORY_SUITE",
    "Format",
    "ImageBuilder",
    "IndexBuilder",
    "Layer",
    "LayerBuilder",
    "PushedImage",
    "busybox_image",
    "compress",
    "twin_maps",
]

BUSYBOX = Path("/usr/bin/busybox")
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "true")
Buildable = ImageBuilder | IndexBuilder

# VFS capability v2, effective, permitted = CAP_NET_BIND_SERVICE (binary, contains NULs).
CAP_NET_BIND_SERVICE = struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0)


@cache
def busybox_binary() -> bytes:
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} (Debian busybox-static) is needed for the busybox base")
    return BUSYBOX.read_bytes()


def busybox_image(fmt: Format = "docker", **image: object) -> ImageBuilder:
    """Two gzip layers, like Appendix A: `bin/busybox`, then symlinks sh, ls, cat, echo, true."""
    binary = LayerBuilder().dir("bin/").file("bin/busybox", busybox_binary(), mode=0o755)
    applets = LayerBuilder().dir("bin/")
    for applet in BUSYBOX_APPLETS:
        applets.symlink(f"bin/{applet}", "busybox")
    return (
        ImageBuilder(fmt=fmt, **image)  # type: ignore[arg-type]
        .layer(binary, created_by="ADD busybox /bin/busybox")
        .layer(applets, created_by="RUN busybox --install -s")
    )


def modes_owners_layer() -> LayerBuilder:
    """File before its parent's header (parent 0750), setuid/setgid/sticky, ids incl. base-256
    and PAX uid/gid, relative and absolute symlinks."""
    return (
        LayerBuilder()
        .file("etc/file.txt", b"written before etc/ has a header\n")
        .dir("etc/", mode=0o750)
        .dir("srv/")
        .file("srv/setuid", b"#!/bin/sh\necho suid\n", mode=0o4755)
        .file("srv/setgid", b"sgid\n", mode=0o2711)
        .dir("srv/sticky/", mode=0o1777)
        .file("srv/owned", b"owned by 1000\n", uid=1000, gid=1000, uname="user", gname="user")
        .file("srv/bigid", b"base-256 ids\n", uid=3000000, gid=3000000)
        .file("srv/paxid", b"pax ids\n", pax={"uid": "4000000", "gid": "4000001"})
        .dir("srv/private/", mode=0o750, uid=1000, gid=1000)
        .symlink("srv/rel", "setuid")
        .symlink("srv/abs", "/bin/busybox")
    )


def modes_owners() -> ImageBuilder:
    """Docker schema 2, gzip: see modes_owners_layer."""
    return busybox_image().layer(modes_owners_layer(), created_by="modes and owners")


def times() -> ImageBuilder:
    """OCI, gzip: PAX fractional mtime, PAX atime, pre-1970 (base-256 negative) mtime, dir mtimes
    re-applied after children, implicit parents."""
    layer = (
        LayerBuilder()
        .dir("t/", mtime=1600000000)
        .file("t/frac", b"frac\n", pax={"mtime": "1700000011.123456789"})
        .file("t/atime", b"atime\n", pax={"mtime": "1700000012.5", "atime": "1700000099.25"})
        .file("t/old", b"before 1970\n", mtime=-100)
        .symlink("t/link", "frac", mtime=1650000000)
        .dir("t/sub/", mtime=1500000000)
        .file("t/sub/child", b"written after its dir\n", mtime=1700000020)
        .file("u/implicit/parents", b"no header for u/ and u/implicit/\n")
    )
    return busybox_image("oci").layer(layer, created_by="times")


def links_devices() -> ImageBuilder:
    """Docker schema 2, an uncompressed layer: hard link whose header has another mode/mtime than
    its target, hard link to a symlink, char/block devices, fifo."""
    layer = (
        LayerBuilder()
        .dir("l/")
        .file("l/target", b"shared inode\n", mtime=1700000001)
        .hardlink("l/hard", "l/target", mode=0o600, mtime=1700000002, uid=7, gid=8)
        .symlink("l/sym", "target")
        .hardlink("l/hard-to-sym", "l/sym")
        .dir("dev/")
        .chardev("dev/null", 1, 3)
        .blockdev("dev/loop9", 7, 9, gid=6)
        .fifo("dev/fifo", mode=0o600)
    )
    return busybox_image().layer(layer, compression="none", created_by="links and devices")


def xattrs() -> ImageBuilder:
    """OCI, gzip: SCHILY.xattr user.x, binary security.capability (hdrcharset=BINARY),
    trusted.x, an empty value, xattrs on a dir and on a symlink."""
    layer = (
        LayerBuilder()
        .dir("x/", xattrs={"user.dir": b"on a dir"})
        .file("x/user", b"u\n", xattrs={"user.x": b"hello"})
        .file(
            "x/cap",
            b"cap\n",
            mode=0o755,
            pax={"hdrcharset": "BINARY"},
            xattrs={"security.capability": CAP_NET_BIND_SERVICE},
        )
        .file("x/trusted", b"t\n", xattrs={"trusted.x": b"trusted value"})
        .file("x/empty", b"e\n", xattrs={"user.empty": b"", "user.full": b"f"})
        .symlink("x/sym", "user", xattrs={"user.x": b"dropped on symlinks"})
    )
    return busybox_image("oci").layer(layer, created_by="xattrs")


def whiteout_layers() -> tuple[LayerBuilder, LayerBuilder]:
    """A content layer, then whiteouts (1000:1000) and opaque markers with/without a dir header."""
    content = (
        LayerBuilder()
        .dir("w/")
        .file("w/keep", b"keep\n")
        .file("w/gone", b"gone\n")
        .dir("w/gonedir/")
        .file("w/gonedir/f", b"f\n")
        .dir("w/opq1/")
        .file("w/opq1/old", b"old\n")
        .dir("w/opq2/")
        .file("w/opq2/old", b"old\n")
    )
    deletions = (
        LayerBuilder()
        .dir("w/")
        .whiteout("w/gone")
        .whiteout("w/gonedir")
        .dir("w/opq1/")
        .opaque("w/opq1")
        .file("w/opq1/new", b"new\n")
        .opaque("w/opq2")
        .whiteout("bin/true", uid=0, gid=0)
    )
    return content, deletions


def whiteouts() -> ImageBuilder:
    """Docker schema 2, gzip: Appendix A's shape (busybox, applets, files, whiteouts/opaque)."""
    content, deletions = whiteout_layers()
    return (
        busybox_image()
        .layer(content, created_by="files")
        .layer(deletions, created_by="whiteouts and opaque dirs")
    )


def long_names() -> ImageBuilder:
    """Docker schema 2, gzip: GNU ././@LongLink names (L) and link names (K), PAX path/linkpath,
    a deep path with implicit parents."""
    gnu, pax = "long/" + "g" * 120, "long/" + "p" * 120
    deep = "long/" + "/".join(["segment-" + str(i) * 12 for i in range(6)]) + "/leaf"
    layer = (
        LayerBuilder()
        .dir("long/")
        .file(gnu, b"gnu long name\n", long="gnu", magic="gnu")
        .file(pax, b"pax long path\n")
        .symlink("long/gnu-link", "g" * 120 + "/../" + "g" * 120, long="gnu", magic="gnu")
        .symlink("long/pax-link", "p" * 120 + "/../" + "p" * 120)
        .hardlink("long/" + "h" * 110, gnu, long="gnu", magic="gnu")
        .hardlink("long/" + "q" * 110, pax)
        .file(deep, b"deep\n")
    )
    return busybox_image().layer(layer, created_by="long names")


def odd_names() -> ImageBuilder:
    """OCI, gzip: non-UTF-8 names (tar-split name_raw), <>& and control characters, U+2028."""
    layer = (
        LayerBuilder()
        .dir("n/")
        .file(b"n/caf\xe9", b"latin-1 name\n")
        .file(b"n/\xff\xfe-dir/inner", b"implicit non-UTF-8 parent\n")
        .file("n/a<b>&c", b"html\n")
        .file("n/ctl\x01\x08\x0c\x1f\x7f", b"control\n")
        .file("n/tab\tand\nnewline", b"whitespace\n")
        .file("n/sep\u2028\u2029", b"line separators\n")
        .file("n/ünï", b"utf-8\n")
        .symlink("n/link\x02", b"caf\xe9")
    )
    return busybox_image("oci").layer(layer, created_by="odd names")


def dot_slash() -> ImageBuilder:
    """OCI, gzip: a `./`-prefixed archive with a `./` root entry (mode 0700, ignored on disk) over
    the plain-style busybox base."""
    layer = (
        LayerBuilder()
        .dir("./", mode=0o700, mtime=1234567890)
        .dir("./dot/")
        .file("./dot/f", b"dot slash\n")
        .symlink("./dot/l", "f")
        .hardlink("./dot/h", "./dot/f")
        .dir("./dot/sub/", mode=0o711)
    )
    return busybox_image("oci").layer(layer, created_by="dot-slash style")


def padding() -> ImageBuilder:
    """Docker schema 2: empty layer (1024 zero bytes), gzip + 9216 trailing zeros, uncompressed +
    102400 trailing zeros, a tar ending with one zero block, empty_layer history entries."""
    return (
        busybox_image()
        .empty("ENV A=1")
        .layer(EMPTY_LAYER, created_by="empty tar")
        .layer(LayerBuilder().file("pad-9216", b"x\n").build(trailing=b"\0" * 9216))
        .empty("CMD [\"sh\"]")
        .layer(
            LayerBuilder().file("pad-102400", b"y\n").build(trailing=b"\0" * 102400),
            compression="none",
        )
        .layer(LayerBuilder().file("one-zero-block", b"z\n").build(end_blocks=1))
        .empty("LABEL end=1")
    )


def duplicate_layers() -> ImageBuilder:
    """Docker schema 2, gzip: one blob at positions 3 and 5 (downloaded once, registered twice)."""
    dup = LayerBuilder().dir("dup/").file("dup/a", b"duplicate\n").build(trailing=b"\0" * 3584)
    other = LayerBuilder().dir("dup/").file("dup/b", b"between\n")
    return busybox_image().layer(dup, created_by="dup").layer(other).layer(dup, created_by="dup again")


def shared_base() -> ImageBuilder:
    """Docker schema 2: modes_owners plus one layer (shares three layers with it)."""
    return modes_owners().layer(LayerBuilder().file("srv/extra", b"on top\n"), created_by="extra")


def small_platform_image(fmt: Format, architecture: str, variant: str | None) -> ImageBuilder:
    layer = LayerBuilder().dir("etc/").file("etc/arch", f"{architecture}{variant or ''}\n".encode())
    return ImageBuilder(fmt=fmt, architecture=architecture, variant=variant).layer(layer)


def docker_list() -> IndexBuilder:
    """Docker manifest list: linux/arm64/v8 first, then linux/amd64 (busybox), then linux/arm/v7."""
    amd64 = busybox_image().layer(LayerBuilder().dir("etc/").file("etc/arch", b"amd64\n"))
    return (
        IndexBuilder("docker")
        .add(small_platform_image("docker", "arm64", "v8"))
        .add(amd64)
        .add(small_platform_image("docker", "arm", "v7"))
    )


def oci_index() -> IndexBuilder:
    """OCI index: linux/amd64 (busybox), linux/arm64/v8, and an unknown/unknown attestation."""
    amd64 = busybox_image("oci").layer(LayerBuilder().dir("etc/").file("etc/arch", b"amd64\n"))
    index = IndexBuilder("oci", attest=0)
    return index.add(amd64).add(small_platform_image("oci", "arm64", "v8"))


def zstd() -> ImageBuilder:
    """OCI: zstd layers over a gzip busybox base (dockerd 20.10 cannot pull it: needs_gzip_twin;
    compare against a pull of `.gzip_twin()`)."""
    first = LayerBuilder().dir("z/").file("z/one", b"zstd layer\n" * 100)
    second = LayerBuilder().file("z/two", b"zstd with padding\n").build(trailing=b"\0" * 9216)
    return (
        busybox_image("oci")
        .layer(first, compression="zstd", created_by="zstd 1")
        .layer(second, compression="zstd", created_by="zstd 2")
    )


FACTORY_SUITE: dict[str, Callable[[], Buildable]] = {
    "modes_owners": modes_owners,
    "times": times,
    "links_devices": links_devices,
    "xattrs": xattrs,
    "whiteouts": whiteouts,
    "long_names": long_names,
    "odd_names": odd_names,
    "dot_slash": dot_slash,
    "padding": padding,
    "duplicate_layers": duplicate_layers,
    "shared_base": shared_base,
    "docker_list": docker_list,
    "oci_index": oci_index,
    "zstd": zstd,
}
