"""The overlay mount options explain prints, built as dockerd's overlay2 driver builds them."""

from __future__ import annotations

import os

from emustore.explain.mount import LookMount, OverlayMount, new_container_mount

HOME = "/var/lib/docker/overlay2"
LINKS = ["l/" + chr(65 + n % 26) * 26 for n in range(100)]
PAGE = os.sysconf("SC_PAGE_SIZE")


def test_short_options_are_absolute_read_write_with_upper_and_work() -> None:
    mount = OverlayMount(HOME, "c" * 64, ":".join(LINKS[:2]), False, True, False)
    assert mount.options == (f"index=off,lowerdir={HOME}/{LINKS[0]}:{HOME}/{LINKS[1]},"
                             f"upperdir={HOME}/{'c' * 64}/diff,workdir={HOME}/{'c' * 64}/work")
    assert not mount.relative and mount.target == f"{HOME}/{'c' * 64}/merged"
    assert mount.lowerdirs() == [f"{HOME}/{LINKS[0]}", f"{HOME}/{LINKS[1]}"]
    assert mount.command() == f"mount -t overlay overlay -o {mount.options} {mount.target}"


def test_committed_dirs_mount_read_only_with_their_diff_on_top() -> None:
    mount = OverlayMount(HOME, "c" * 64, LINKS[0], True, False, True)
    assert mount.options == f"userxattr,lowerdir={HOME}/{'c' * 64}/diff:{HOME}/{LINKS[0]}"


def test_options_past_a_page_switch_to_relative_paths_and_a_chdir() -> None:
    lower = ":".join(LINKS[:40])
    absolute = OverlayMount(HOME, "c" * 64, lower, False, True, False)
    count = next(n for n in range(1, 101) if len(OverlayMount(HOME, "c" * 64, ":".join(LINKS[:n]), False, True, False)._options(False)) > PAGE - 1)
    assert OverlayMount(HOME, "c" * 64, ":".join(LINKS[:count - 1]), False, True, False).relative is False
    long = OverlayMount(HOME, "c" * 64, ":".join(LINKS[:count]), False, True, False)
    assert long.relative and long.absolute_length > PAGE - 1
    assert long.options == f"index=off,lowerdir={':'.join(LINKS[:count])},upperdir={'c' * 64}/diff,workdir={'c' * 64}/work"
    assert long.command().startswith(f"cd {HOME} && mount -t overlay overlay -o ")
    assert long.target == "c" * 64 + "/merged"
    assert absolute.relative == (len(absolute._options(False)) > PAGE - 1)


def test_a_new_container_is_judged_with_real_id_lengths() -> None:
    for count in (2, 37, 38, 39, 40):
        lower = ":".join(LINKS[1:count])
        predicted = new_container_mount(HOME, LINKS[0][2:], lower, False)
        real = OverlayMount(HOME, "f" * 64, ":".join(["l/" + "Z" * 26, LINKS[0], lower]), False, predicted.index_off, False)
        assert predicted.relative == real.relative and predicted.absolute_length == len(real._options(False))
        assert predicted.lower.startswith("l/<INIT-LINK>:" + LINKS[0] + ":")


def test_look_commands() -> None:
    assert LookMount(HOME, "top/diff", None, False).command() == f"mkdir -p /mnt/emustore-look && mount --bind -o ro {HOME}/top/diff /mnt/emustore-look"
    assert LookMount(HOME, "top/diff", LINKS[0], True).command() == (
        f"mkdir -p /mnt/emustore-look && mount -t overlay overlay -o ro,userxattr,lowerdir={HOME}/top/diff:{HOME}/{LINKS[0]} /mnt/emustore-look")
    long = LookMount(HOME, "top/diff", ":".join(LINKS), False).command()
    assert long == f"mkdir -p /mnt/emustore-look && cd {HOME} && mount -t overlay overlay -o ro,lowerdir=top/diff:{':'.join(LINKS)} /mnt/emustore-look"
