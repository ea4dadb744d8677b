"""Extraction semantics of format doc §9, on a real filesystem (needs root for owners/devices)."""

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from emustore.errors import LayerError
from emustore.layers.pipeline import unpack_layer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners, devices and trusted.* xattrs need root")


def _info(name: str, kind: bytes = tarfile.REGTYPE, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = attrs.pop("mtime", 1600000000)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _extract(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    blob = buf.getvalue()
    diff = tmp_path / "diff"
    diff.mkdir(mode=0o755)
    unpack_layer(iter([blob]), "sha256:" + hashlib.sha256(blob).hexdigest(), str(diff), str(tmp_path / "ts"))
    return diff


@needs_root
def test_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    diff = _extract(
        tmp_path,
        [
            (_info("etc/", tarfile.DIRTYPE, mode=0o755), None),
            (_info("etc/.wh..wh..opq"), b""),
            (_info("etc/.wh.passwd", uid=1000, gid=1000, mode=0o644), b""),
            (_info("gone/.wh..wh..opq"), b""),
        ],
    )
    dev = os.lstat(diff / "etc" / "passwd")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 0 and os.minor(dev.st_rdev) == 0
    assert stat.S_IMODE(dev.st_mode) == 0 and (dev.st_uid, dev.st_gid) == (1000, 1000)
    assert os.getxattr(diff / "etc", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(diff / "gone", "trusted.overlay.opaque") == b"y"
    assert not (diff / "etc" / ".wh.passwd").exists()


@needs_root
def test_modes_owners_times_and_special_files(tmp_path: Path) -> None:
    diff = _extract(
        tmp_path,
        [
            (_info("bin/", tarfile.DIRTYPE, mode=0o750, mtime=1500000000), None),
            (_info("bin/su", mode=0o4755, uid=0, gid=0), b"su"),
            (_info("bin/tmp/", tarfile.DIRTYPE, mode=0o1777), None),
            (_info("bin/sg", mode=0o2711, uid=3000000, gid=3000000), b"x"),
            (_info("null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3), None),
            (_info("fifo", tarfile.FIFOTYPE, mode=0o600), None),
            (_info("old", mtime=-100), b"o"),
        ],
    )
    assert stat.S_IMODE(os.lstat(diff / "bin").st_mode) == 0o750
    assert os.lstat(diff / "bin").st_mtime == 1500000000  # applied after its children
    assert stat.S_IMODE(os.lstat(diff / "bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(diff / "bin/tmp").st_mode) == 0o1777
    sg = os.lstat(diff / "bin/sg")
    assert stat.S_IMODE(sg.st_mode) == 0o2711 and sg.st_uid == 3000000
    null = os.lstat(diff / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(diff / "fifo").st_mode)
    assert os.lstat(diff / "old").st_mtime == 0  # before the epoch → the epoch
    assert os.lstat(diff / "bin/su").st_mtime == 1600000000


@needs_root
def test_names_cannot_escape_the_layer(tmp_path: Path) -> None:
    diff = _extract(
        tmp_path,
        [
            (_info("../up"), b"1"),
            (_info("/abs"), b"2"),
            (_info("lnk", tarfile.SYMTYPE, linkname="/real"), None),
            (_info("real/", tarfile.DIRTYPE), None),
            (_info("lnk/f"), b"3"),
            (_info("sub/up", tarfile.SYMTYPE, linkname="../../.."), None),
            (_info("sub/up/escaped"), b"4"),
        ],
    )
    assert (diff / "up").read_bytes() == b"1"
    assert (diff / "abs").read_bytes() == b"2"
    assert (diff / "real" / "f").read_bytes() == b"3"
    assert (diff / "escaped").read_bytes() == b"4"
    assert not (tmp_path / "up").exists() and not (tmp_path / "escaped").exists()
    assert os.readlink(diff / "lnk") == "/real"


@needs_root
def test_hard_links_take_the_link_header(tmp_path: Path) -> None:
    diff = _extract(
        tmp_path,
        [
            (_info("a", mode=0o644, mtime=1000), b"data"),
            (_info("b", tarfile.LNKTYPE, linkname="a", mode=0o600, mtime=2000), None),
            (_info("s", tarfile.SYMTYPE, linkname="a"), None),
            (_info("t", tarfile.LNKTYPE, linkname="s", mode=0o600), None),
        ],
    )
    a, b = os.lstat(diff / "a"), os.lstat(diff / "b")
    assert a.st_ino == b.st_ino and stat.S_IMODE(a.st_mode) == 0o600 and a.st_mtime == 2000
    assert os.lstat(diff / "t").st_ino == os.lstat(diff / "s").st_ino  # a hard link to the symlink


@needs_root
def test_root_entry_is_skipped_and_implicit_parents_are_0755(tmp_path: Path) -> None:
    diff = _extract(
        tmp_path,
        [
            (_info("./", tarfile.DIRTYPE, mode=0o700), None),
            (_info("x/y/z"), b"z"),
            (_info("x/", tarfile.DIRTYPE, mode=0o750), None),
        ],
    )
    assert stat.S_IMODE(os.lstat(diff).st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(diff / "x").st_mode) == 0o750  # header after its child wins
    assert stat.S_IMODE(os.lstat(diff / "x" / "y").st_mode) == 0o755


@needs_root
def test_pax_xattrs_are_set_and_empty_ones_dropped(tmp_path: Path) -> None:
    info = _info("f")
    info.pax_headers = {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.t": "w", "SCHILY.xattr.user.e": ""}
    diff = _extract(tmp_path, [(info, b"1")])
    assert os.getxattr(diff / "f", "user.k") == b"v"
    assert os.getxattr(diff / "f", "trusted.t") == b"w"
    assert "user.e" not in os.listxattr(diff / "f")


@needs_root
def test_whiteout_of_a_file_written_by_the_same_layer_fails(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="exists"):
        _extract(tmp_path, [(_info("f"), b"1"), (_info(".wh.f"), b"")])


@needs_root
def test_replacing_a_file_by_a_directory(tmp_path: Path) -> None:
    diff = _extract(tmp_path, [(_info("a/b"), b"1"), (_info("a", tarfile.SYMTYPE, linkname="elsewhere"), None)])
    assert os.readlink(diff / "a") == "elsewhere"
