"""Hostile paths in `create --add-file/--rm-file` and `cp` (both ways) never reach outside.

Each case builds a container (upper, init and image diff dirs) whose image layer holds symlinks
aimed at a canary dir beside it (absolute host paths, relative `../` climbs, deeper links), and
a host side with its own traps, then runs one change or copy. Inside the container those links
resolve with the container's root as "/", as dockerd resolves them, so each case is contained
(lands inside the container, or inside DEST) or refused with a one-line error. The witness: a
snapshot of everything but the one dir the operation may write (the upper dir, or DEST) before
and after; it must be unchanged (outside_changes=0): the canary, the image layers, the host.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from emustore.errors import EmustoreError
from emustore.stores.docker.containerfs import LayerStack, write_init_layer
from emustore.stores.docker.containers import copy_in, copy_out
from tests.support.canary import changes, make_canary, snapshot
from tests.support.figures import module_figures

FIGURES = {"cases": 0, "refused": 0, "contained": 0, "outside_changes": 0}


@dataclass
class World:
    """tmp/{outside (canary), layers/{up,init,low}, host, dest}."""

    top: Path
    stack: LayerStack

    @property
    def outside(self) -> Path:
        return self.top / "outside"

    @property
    def host(self) -> Path:
        return self.top / "host"

    @property
    def dest(self) -> Path:
        return self.top / "dest"

    @property
    def init2(self) -> Path:
        return self.top / "layers" / "init2"


def _world(top: Path) -> World:
    outside = make_canary(top / "outside")
    diffs = [top / "layers" / name for name in ("up", "init", "low")]
    for diff in diffs:
        diff.mkdir(parents=True)
    low = diffs[2]
    (low / "etc").mkdir()
    (low / "etc" / "hosts").write_text("127.0.0.1 x\n")
    (low / "etc" / "only-here").write_text("no such path on the host\n")
    (low / "abs").symlink_to(outside)  # a host path: inside the container it names /<that path>
    (low / "rel").symlink_to(os.path.relpath(outside, low))
    (low / "deep").mkdir()
    (low / "deep" / "rel").symlink_to(os.path.relpath(outside, low / "deep"))
    (low / "deep" / "decoyfile").symlink_to(os.path.relpath(outside / "decoy", low / "deep"))
    (low / "root").symlink_to("/")  # cases through it name paths the host does not have
    (low / "hard1").write_text("image file\n")
    os.link(low / "hard1", low / "hard2")
    host = top / "host"
    (host / "dir" / "inner").mkdir(parents=True)
    (host / "dir" / "inner" / "f").write_text("payload\n")
    (host / "file").write_text("payload\n")
    (host / "link_abs").symlink_to(outside)
    (host / "link_rel").symlink_to(os.path.relpath(outside, host))
    (host / "with_esc" / "esc").mkdir(parents=True)
    (host / "with_esc" / "esc" / "decoy").write_text("through a link?\n")
    (top / "dest").mkdir()
    (top / "layers" / "init2").mkdir()
    low2 = top / "layers" / "low2"  # an image whose init-layer paths are links aimed outside
    low2.mkdir()
    (low2 / "etc").symlink_to(outside)
    (low2 / "dev").symlink_to(os.path.relpath(outside / "sub", low2))
    (low2 / "proc").symlink_to(outside / "decoy")
    (low2 / ".dockerenv").symlink_to(os.path.relpath(outside / "decoy", low2))
    stack = LayerStack(diffs)
    write_init_layer(LayerStack(diffs[1:]))
    return World(top, stack)


def _in(source: str, destination: str) -> Callable[[World], None]:
    return lambda w: copy_in(w.stack, str(w.host / source) if not source.startswith("/") else source, destination)


def _out(source: str, destination: str = "") -> Callable[[World], None]:
    return lambda w: copy_out(w.stack, source, str(w.dest) + destination, "c:" + source)


def _rm(*paths: str) -> Callable[[World], None]:
    def run(w: World) -> None:
        for path in paths:
            w.stack.delete(path)
    return run


def _steps(*steps: Callable[[World], None]) -> Callable[[World], None]:
    def run(w: World) -> None:
        for step in steps:
            step(w)
    return run


def _hard_link_upper_to_canary(w: World) -> None:
    os.link(w.outside / "decoy", w.stack.upper / "hl")  # an upper file sharing the canary's inode


def _dest_traps(w: World) -> None:
    (w.dest / "etc").symlink_to(w.outside)
    (w.dest / "hosts").symlink_to(w.outside / "decoy")


# name -> (operation, what it may change: the container's upper dir, the host DEST, or the init
# layer being written over an image whose init paths are links)
CASES: dict[str, tuple[Callable[[World], None], str]] = {
    "rm_through_abs_link": (_rm("/abs/decoy"), "upper"),
    "rm_through_rel_link": (_rm("/rel/decoy"), "upper"),
    "rm_through_deep_link": (_rm("/deep/rel/sub/inner"), "upper"),
    "rm_dir_through_link": (_rm("/abs/sub"), "upper"),
    "rm_dotted_forms": (_rm("//rel//./decoy"), "upper"),
    "rm_dotdot_forms": (_rm("/abs/../rel/sub/../decoy"), "upper"),
    "rm_link_itself": (_rm("/rel", "/deep/decoyfile", "/abs/"), "upper"),
    "rm_via_added_abs_link": (_steps(_in("link_abs", "/app"), _rm("/app/decoy")), "upper"),  # issue 13.2
    "rm_via_added_rel_link": (_steps(_in("link_rel", "/app"), _rm("/app/sub")), "upper"),
    "rm_via_root_link": (_rm("/root/etc/only-here", "/root/root/deep/decoyfile"), "upper"),
    "cp_in_into_abs_link_dir": (_in("file", "/abs/"), "upper"),
    "cp_in_onto_link_target": (_in("file", "/rel/decoy"), "upper"),
    "cp_in_dir_into_link": (_in("dir", "/deep/rel/sub"), "upper"),
    "cp_in_onto_abs_link": (_in("file", "/abs"), "upper"),
    "cp_in_onto_deep_file_link": (_in("file", "/deep/decoyfile"), "upper"),
    "cp_in_dotdot_source": (_in("dir/inner/..", "/"), "upper"),  # issue 13.3
    "cp_in_dotdot_source_to_link": (_in("dir/inner/..", "/rel"), "upper"),
    "cp_in_dotdot_both": (_in("dir/inner/../", "/rel/.."), "upper"),
    "cp_in_dot_source": (_in("dir/.", "/abs/sub/"), "upper"),
    "cp_in_host_link_as_itself": (_in("link_abs", "/deep/"), "upper"),
    "cp_in_dir_over_link": (_steps(_in("link_abs", "/esc"), _in("with_esc/.", "/")), "upper"),
    "cp_in_over_hard_link": (_steps(_hard_link_upper_to_canary, _in("file", "/hl")), "upper"),
    "cp_in_over_image_hard_link": (_in("file", "/hard1"), "upper"),
    "cp_in_root_source": (_in("/", "/nonexistent/x"), "upper"),
    "cp_out_through_abs_link": (_out("/abs/decoy"), "dest"),
    "cp_out_link_followed": (_out("/rel/"), "dest"),
    "cp_out_dotdot_root": (_out("/etc/..", "/x"), "dest"),  # issue 13.3
    "cp_out_dotdot_dir": (_out("/deep/rel/.."), "dest"),
    "cp_out_deep_dotdot": (_out("/deep/rel/../../..", "/"), "dest"),
    "cp_out_via_root_link": (_out("/root/etc/."), "dest"),
    "cp_out_abs_link_itself": (_out("/abs", "/a"), "dest"),
    "cp_out_escaping_link_itself": (_out("/rel", "/r"), "dest"),
    "cp_out_onto_dest_links": (_steps(_dest_traps, _out("/etc/hosts"), _out("/etc")), "dest"),
    "cp_out_image_hard_links": (_out("/hard1", "/h"), "dest"),
    "init_layer_over_links": (lambda w: write_init_layer(LayerStack([w.init2, w.top / "layers" / "low2"])), "init"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_contained_or_refused(name: str, tmp_path: Path) -> None:
    operation, writes = CASES[name]
    world = _world(tmp_path)
    allowed = {"upper": world.stack.upper, "dest": world.dest, "init": world.init2}[writes]
    before = snapshot(tmp_path, (allowed,))
    error = None
    try:
        operation(world)
    except EmustoreError as exc:
        error = exc
    changed = changes(before, snapshot(tmp_path, (allowed,)))
    FIGURES["cases"] += 1
    FIGURES["refused" if error else "contained"] += 1
    FIGURES["outside_changes"] += len(changed)
    assert changed == [], changed
    if error is not None:
        assert "\n" not in str(error)
    assert (world.outside / "decoy").read_text() == "do not touch\n"


def test_contained_cases_land_inside(tmp_path: Path) -> None:
    """The contained answers are docker's: resolved in the container, named as docker names them."""
    world = _world(tmp_path)
    upper = world.stack.upper
    CASES["cp_in_dotdot_source"][0](world)  # the real name of host/dir/inner/.., never ".."
    CASES["cp_in_dotdot_source_to_link"][0](world)  # DEST /rel -> "../../outside" is /outside in here
    assert sorted(os.listdir(upper)) == ["dir", "outside"]
    assert (upper / "dir" / "inner" / "f").read_text() == (upper / "outside" / "inner" / "f").read_text() == "payload\n"
    _out("/root/etc/.")(world)
    assert sorted(os.listdir(world.dest)) == ["hostname", "hosts", "mtab", "only-here", "resolv.conf"]
    _rm("/root/etc/only-here")(world)  # the image's file, through a link to "/": a whiteout
    assert world.stack.lookup(PurePosixPath("etc/only-here")) is None and (upper / "etc" / "only-here").is_char_device()
    with pytest.raises(EmustoreError, match="invalid symlink .*/x/deep/decoyfile"):
        _out("/etc/..", "/x")(world)  # refused as a whole: the image's links climb out of DEST
    assert not (world.dest / "x").exists()
    _steps(_hard_link_upper_to_canary, _in("file", "/hl"))(world)
    assert (upper / "hl").read_text() == "payload\n" and (world.outside / "decoy").read_text() == "do not touch\n"
    CASES["init_layer_over_links"][0](world)  # as dockerd: each link unlinked, dirs made opaque over it
    for name in ("etc", "dev", "proc"):
        assert (world.init2 / name).is_dir() and not (world.init2 / name).is_symlink()
        assert os.getxattr(world.init2 / name, "trusted.overlay.opaque") == b"y"
    assert (world.init2 / ".dockerenv").is_file() and (world.init2 / "etc" / "hosts").is_file()


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["outside_changes"] == 0
    assert figures["cases"] == selected["test_contained_or_refused"]  # every case that ran was counted once


_figures = module_figures("containers hostile paths", FIGURES, _check_figures)


def test_errors_naming_hostile_names_stay_on_one_line(tmp_path: Path) -> None:
    """Names from a layer (or the command line) may hold newlines and undecodable bytes."""
    world = _world(tmp_path)
    low = world.stack.diffs[-1]
    odd = low / "bad\nname"
    odd.mkdir()
    os.mkfifo(odd / "fifo\x1b[2J")
    os.symlink("../../..\nx", os.fsencode(low) + b"/link\xff")
    (world.host / "new\nline").write_text("x")
    failures = [
        lambda: copy_out(world.stack, "/bad\nname", str(world.dest), "c:/bad\nname"),  # a fifo in it
        lambda: copy_out(world.stack, "/", str(world.dest) + "/x", "c:/"),  # the link climbs out of x
        lambda: copy_in(world.stack, str(world.host / "new\nline"), "/nope\n/"),
        lambda: world.stack.delete("/gone\n"),
    ]
    for failure in failures:
        with pytest.raises(EmustoreError) as caught:
            failure()
        assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value), str(caught.value)
        assert "\\n" in str(caught.value) or "\\x1b" in str(caught.value), str(caught.value)
