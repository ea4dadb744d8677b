"""Property test: random member sequences never reach outside the layer, nor replace its root.

Hypothesis generates layers from names made of `.`, `..`, empty parts, absolute prefixes,
whiteout prefixes and a few plain names, and members of every kind (files, dirs, symlinks to
inside and outside, hard links, fifos, whiteouts, opaque markers, duplicates). Whatever the
extraction makes of them (contained or refused with a one-line error), everything outside the
staging dir is unchanged and the diff dir is still a real directory.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emustore.errors import LayerError
from emustore.layers import pipeline
from emustore.layers.pipeline import UnpackOptions, unpack_layer
from tests.support.figures import module_figures
from tests.support.tarlayer import LayerBuilder

PARTS = ["a", "b", "c", ".", "..", "", ".wh.a", ".wh..", ".wh..wh..opq", ".wh.", "decoy", "outside"]
KINDS = ["file", "dir", "symlink", "hardlink", "fifo"]
FIGURES = {"layers": 0, "members": 0, "refused": 0, "outside_changes": 0, "root_replaced": 0}

# examples are derived from the test's name in CI (the same inputs every run), random elsewhere
settings.register_profile("ci", derandomize=True, max_examples=400, deadline=None)
settings.register_profile("dev", max_examples=400, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

names = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "/", "//", "./", "../", "../../"]),
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=5),
    st.sampled_from(["", "/", "/.", "/.."]),
)
members = st.tuples(st.sampled_from(KINDS), names, names, st.booleans())


def _snapshot(top: Path, skip: Path) -> dict[str, tuple[int, int, int, str, bytes]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            path = here / name
            st_ = os.lstat(path)
            target = os.readlink(path) if path.is_symlink() else ""
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            found[str(path)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns, target, data)
    return found


def _layer(sequence: list[tuple[str, str, str, bool]], outside: Path) -> bytes:
    layer = LayerBuilder()
    for kind, name, target, absolute_out in sequence:
        if kind == "file":
            layer.file(name, b"hostile", mode=0o4755)
        elif kind == "dir":
            layer.dir(name, mode=0o777)
        elif kind == "symlink":  # to the decoy dir on the host, or to a generated name
            layer.symlink(name, str(outside) if absolute_out else target)
        elif kind == "hardlink":
            layer.hardlink(name, str(outside / "decoy") if absolute_out else target)
        else:
            layer.fifo(name)
    return layer.build()


@pytest.mark.parametrize("may_fork", [False, True], ids=["here", "child"])
def test_random_layers_stay_inside(may_fork: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "FORK_CHECK_EVERY", 1)

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(members, min_size=1, max_size=12))
    def check(sequence: list[tuple[str, str, str, bool]]) -> None:
        top = Path(tempfile.mkdtemp(prefix="emustore-fuzz-"))
        try:
            outside = top / "outside"
            outside.mkdir()
            (outside / "decoy").write_bytes(b"do not touch\n")
            diff = top / "stage" / "diff"
            diff.mkdir(parents=True)
            tar_split = top / "stage" / "ts.json.gz"
            tar_split.touch()
            blob = gzip.compress(_layer(sequence, outside), mtime=0)
            before = _snapshot(top, diff)
            FIGURES["layers"] += 1
            FIGURES["members"] += len(sequence)
            try:
                unpack_layer(
                    iter([blob]),
                    "sha256:" + hashlib.sha256(blob).hexdigest(),
                    str(diff),
                    str(tar_split),
                    UnpackOptions(may_fork=may_fork),
                )
            except LayerError as exc:
                FIGURES["refused"] += 1
                assert "\n" not in str(exc)
            after = _snapshot(top, diff)
            changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p) and p != str(tar_split)]
            FIGURES["outside_changes"] += len(changed)
            replaced = diff.is_symlink() or not diff.is_dir()
            FIGURES["root_replaced"] += replaced
            assert changed == [], changed
            assert not replaced, "the layer root was replaced"
        finally:
            shutil.rmtree(top)

    check()


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["layers"] > 0 and figures["outside_changes"] == 0 and figures["root_replaced"] == 0


_figures = module_figures("generated hostile layers", FIGURES, _check_figures)
