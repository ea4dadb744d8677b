"""The terminal progress display, read off a real terminal (tmux): mid-pull screens and a real pull."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.progress import TerminalReporter
from emustore.reference import parse_reference
from tests.integration.test_fsck import fsck_image
from tests.support.imagefactory import LayerBuilder, busybox_image
from tests.support.registry import RegistryServer
from tests.support.tiers import require_binary
from tests.support.tmux import TMUX, TmuxScreen

A, B, C, D = ("sha256:" + c * 64 for c in "abcd")


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[list[TmuxScreen]]:
    require_binary(TMUX, "tmux not installed (terminal tests; CI=true makes this a failure)")
    opened: list[TmuxScreen] = []
    yield opened
    for screen in opened:
        screen.close()


def show(terminals: list[TmuxScreen], tmp_path: Path, output: str, width: int = 160) -> list[str]:
    """What a terminal `width` columns wide displays after receiving `output`."""
    name = "out%d" % len(terminals)
    (tmp_path / name).write_text(output)
    screen = TmuxScreen(tmp_path / (name + ".sock"), ["cat", str(tmp_path / name)], width=width)
    terminals.append(screen)
    return screen.wait_for("EXIT=")


def mid_pull(reporter: TerminalReporter) -> None:
    """A pull with one layer present, one downloaded, one half way and one queued."""
    reporter.pulling(parse_reference("127.0.0.1:5000/tty/demo:v1"))
    reporter.layer(A, "Already exists")
    for digest in (B, C, D):
        reporter.layer(digest, "Pulling fs layer")
    reporter.progress(B, 1_000_000, 4_000_000)
    reporter.progress(C, 500, 1000)
    reporter.progress(B, 3_000_000, 4_000_000)
    reporter.layer(B, "Download complete")


def test_mid_pull_screen(terminals: list[TmuxScreen], tmp_path: Path) -> None:
    out = io.StringIO()
    mid_pull(TerminalReporter(out, columns=160))
    assert show(terminals, tmp_path, out.getvalue()) == [
        "v1: Pulling from tty/demo",
        "aaaaaaaaaaaa: Already exists",
        "bbbbbbbbbbbb: Download complete",
        "cccccccccccc: Downloading [=========================>                         ]     500B/1kB",
        "dddddddddddd: Waiting",
        "EXIT=0",
    ]


def test_finished_pull_screen_and_narrow_terminal(terminals: list[TmuxScreen], tmp_path: Path) -> None:
    out = io.StringIO()
    reporter = TerminalReporter(out, columns=80)
    mid_pull(reporter)
    partial = out.getvalue()
    reporter.progress(C, 500, 1000)
    reporter.progress(D, 100, 2000)
    assert show(terminals, tmp_path, out.getvalue(), width=80)[3:5] == [
        "cccccccccccc: Verifying Checksum",
        "dddddddddddd: Downloading     100B/2kB",  # no bar below 110 columns, as docker
    ]
    for digest in (C, D):
        reporter.progress(digest, 2000, 2000)
        reporter.layer(digest, "Download complete")
    for digest in (B, C, D):
        reporter.layer(digest, "Pull complete")
    reporter.done(parse_reference("127.0.0.1:5000/tty/demo:v1"), "sha256:" + "e" * 64, downloaded=True)
    assert partial in out.getvalue()
    assert show(terminals, tmp_path, out.getvalue(), width=80) == [
        "v1: Pulling from tty/demo",
        "aaaaaaaaaaaa: Already exists",
        "bbbbbbbbbbbb: Pull complete",
        "cccccccccccc: Pull complete",
        "dddddddddddd: Pull complete",
        "Digest: sha256:" + "e" * 64,
        "Status: Downloaded newer image for 127.0.0.1:5000/tty/demo:v1",
        "127.0.0.1:5000/tty/demo:v1",
        "EXIT=0",
    ]


@pytest.mark.registry
def test_real_pull_on_a_terminal(terminals: list[TmuxScreen], registry: RegistryServer, tmp_path: Path) -> None:
    base = busybox_image("docker").push(registry.host, "tty/base", "v1")
    child = fsck_image().layer(LayerBuilder().file("etc/big", bytes(range(256)) * 40_000), created_by="big")  # type: ignore[attr-defined]
    pushed = child.push(registry.host, "tty/child", "v1")
    root = tmp_path / "root"
    for n, image in enumerate((base, pushed)):
        command = [sys.executable, "-m", "emustore", "pull", image.reference, "--root", str(root)]
        screen = TmuxScreen(tmp_path / ("pull%d.sock" % n), command, width=150)
        terminals.append(screen)
        lines = screen.wait_for("EXIT=")
        ids = [digest.split(":")[1][:12] for digest in image.layer_digests]
        statuses = ["Already exists"] * 2 + ["Pull complete"] * 2 if n else ["Pull complete"] * 2
        assert lines == [
            f"v1: Pulling from {image.repository.split('/', 1)[1]}",
            *(f"{layer}: {status}" for layer, status in zip(ids, statuses)),
            f"Digest: {image.digest}",
            f"Status: Downloaded newer image for {image.reference}",
            image.reference,
            "EXIT=0",
        ]
