"""The stack image's layer is exactly what changed between two root file system tarballs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from scripts.bench.layerdiff import diff_layer, normalize, parents, plan, whiteout_name


def write_tar(path: Path, entries: list[tuple[str, bytes | None, dict[str, object]]]) -> Path:
    """entries: (name, data for a file / None for a directory, extra TarInfo attributes)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None and "type" not in extra:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            for key, value in extra.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return [m.name for m in archive]


def test_normalize_and_parents() -> None:
    assert normalize("./usr/bin/") == "usr/bin"
    assert normalize("./") == "" and normalize(".") == ""
    assert list(parents("a/b/c")) == ["a", "a/b"]
    assert whiteout_name("a/b") == "a/.wh.b" and whiteout_name("top") == ".wh.top"


def test_plan_adds_changed_entries_their_parents_link_targets_and_top_most_whiteouts() -> None:
    base = {"etc": ("d",), "etc/a": ("1",), "etc/b": ("1",), "old": ("d",), "old/x": ("1",), "keep": ("1",)}
    full = {"etc": ("d",), "etc/a": ("2",), "etc/b": ("1",), "keep": ("1",), "new": ("1",), "link": ("h",)}
    write, whiteouts = plan(base, full, {"link": "keep"})
    assert write == {"etc", "etc/a", "new", "link", "keep"}
    assert whiteouts == ["old"]  # old/x goes with its directory


def test_diff_layer_writes_changes_in_order_with_whiteouts_and_xattrs(tmp_path: Path) -> None:
    base = write_tar(
        tmp_path / "base.tar",
        [("./", None, {}), ("./etc/", None, {}), ("./etc/same", b"same", {}), ("./etc/edit", b"v1", {}),
         ("./gone/", None, {}), ("./gone/f", b"x", {}), ("./dev/", None, {})],
    )
    full = write_tar(
        tmp_path / "full.tar",
        [("./", None, {}), ("./etc/", None, {}), ("./etc/same", b"same", {}), ("./etc/edit", b"v2", {}),
         ("./usr/", None, {}), ("./usr/new", b"new", {"pax_headers": {"SCHILY.xattr.user.k": "v"}}),
         ("./usr/hard", None, {"type": tarfile.LNKTYPE, "linkname": "./etc/same"}),
         ("./dev/", None, {}), ("./dev/null", None, {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})],
    )
    out = tmp_path / "layer.tar"
    diff_layer(base, full, out, keep=lambda name: not name.startswith("dev/"))
    assert names(out) == ["etc", "etc/same", "etc/edit", "usr", "usr/new", "usr/hard", ".wh.gone"]
    with tarfile.open(out) as archive:
        members = {m.name: m for m in archive}
        assert members["usr/new"].pax_headers == {"SCHILY.xattr.user.k": "v"}
        assert members["usr/hard"].linkname == "etc/same"
        assert archive.extractfile(members["etc/edit"]).read() == b"v2"  # type: ignore[union-attr]


def test_diff_against_nothing_is_the_whole_tree(tmp_path: Path) -> None:
    full = write_tar(tmp_path / "full.tar", [("./", None, {}), ("./a/", None, {}), ("./a/f", b"f", {})])
    out = tmp_path / "layer.tar"
    diff_layer(None, full, out)
    assert names(out) == ["a", "a/f"]
