"""A root a running dockerd owns is refused unless --force, and the message says how it was found.

Stand-ins for dockerd are Python processes whose argv[0] is "dockerd" (what /proc/PID/cmdline
shows); the bind-mount sign is made with a real self bind mount of overlay2/. The real daemon
is covered at the end of tests/integration/test_robust_concurrency.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emustore.stores.docker.ownership import RootInUse, check_not_owned, dockerd_owner
from tests.support.figures import module_figures

FIGURES = {"trials": 0, "detected": 0, "refused_without_force": 0}


@pytest.fixture
def fake_dockerd() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["dockerd", "-c", "import time; time.sleep(120)", *args], executable=sys.executable, cwd=cwd
        )
        started.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"dockerd" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            time.sleep(0.01)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _detected(root: Path) -> str:
    FIGURES["trials"] += 1
    how = dockerd_owner(root)
    assert how is not None
    FIGURES["detected"] += 1
    return how


def test_data_root_flag(fake_dockerd, tmp_path: Path) -> None:
    proc = fake_dockerd("--data-root", str(tmp_path / "root"))
    assert _detected(tmp_path / "root") == f"pid {proc.pid} has data root {tmp_path / 'root'}, from /proc/{proc.pid}/cmdline"
    assert dockerd_owner(tmp_path / "other") is None


def test_relative_flag_with_equals_and_graph_alias(fake_dockerd, tmp_path: Path) -> None:
    fake_dockerd("--data-root=root", cwd=tmp_path)
    fake_dockerd("-g", str(tmp_path / "old"))
    assert "from /proc/" in _detected(tmp_path / "root")
    assert "from /proc/" in _detected(tmp_path / "old")


def test_config_file(fake_dockerd, tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"data-root": str(tmp_path / "root")}))
    fake_dockerd("--config-file", str(config))
    assert _detected(tmp_path / "root").endswith(f"from {config}")


def test_symlinked_root_is_the_same_root(fake_dockerd, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    fake_dockerd("--data-root", str(tmp_path / "real"))
    _detected(tmp_path / "alias")


def test_force_and_the_cli_message(fake_dockerd, tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = fake_dockerd("--data-root", str(root))
    with pytest.raises(RootInUse):
        check_not_owned(root)
    check_not_owned(root, force=True)
    cli = [sys.executable, "-m", "emustore", "pull", "127.0.0.1:1/x/y:v1", "--root", str(root)]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"emustore: {root} is in use by a running dockerd (pid {proc.pid} has data root {root}, "
        f"from /proc/{proc.pid}/cmdline); stop it first or pass --force\n"
    )
    FIGURES["refused_without_force"] += 1
    forced = subprocess.run(cli + ["--force"], capture_output=True, text=True, timeout=120)
    assert "in use" not in forced.stderr and "127.0.0.1:1" in forced.stderr  # got past the check
    assert not root.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_self_bind_mounted_overlay2(tmp_path: Path) -> None:
    overlay = tmp_path / "root" / "overlay2"
    overlay.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(overlay), str(overlay)], check=True)
    try:
        assert "bind-mounted onto itself" in _detected(tmp_path / "root")
    finally:
        subprocess.run(["umount", str(overlay)], check=True)
    assert dockerd_owner(tmp_path / "root") is None


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["detected"] == figures["trials"]


_figures = module_figures("dockerd ownership", FIGURES, _check_figures)
