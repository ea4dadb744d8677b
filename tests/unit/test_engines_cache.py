"""The engine cache: where the tests look for 26 and 28, what a missing one means, and
scripts/fetch-engines.sh's offline paths (a cached engine, an unknown one)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.engines import engine_cache, find_engine, missing
from tests.support.tiers import require_binary, require_engine

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch-engines.sh"
VERSIONS = "docker.io 26.1.5+dfsg1-9+deb13u1+b1\ncontainerd 1.7.24~ds1-6+deb13u1\nsuite trixie\n"


def fake_engine(cache: Path, major: str) -> None:
    dockerd = cache / major / "root" / "usr" / "sbin" / "dockerd"
    dockerd.parent.mkdir(parents=True)
    dockerd.write_text("#!/bin/sh\n")
    dockerd.chmod(0o755)
    (cache / major / "VERSIONS").write_text(VERSIONS)


def test_the_cache_is_under_home_unless_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EMUSTORE_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert engine_cache() == tmp_path / ".cache" / "emustore" / "engines"
    monkeypatch.setenv("EMUSTORE_ENGINE_CACHE", str(tmp_path / "elsewhere"))
    assert find_engine("28").dockerd == tmp_path / "elsewhere" / "28" / "root" / "usr" / "sbin" / "dockerd"
    with pytest.raises(ValueError, match="unknown engine '27'"):
        find_engine("27")


def test_a_cached_engine_is_found_with_its_versions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMUSTORE_ENGINE_CACHE", str(tmp_path))
    assert "fetches it" in (missing(find_engine("26")) or "")
    fake_engine(tmp_path, "26")
    found = find_engine("26")
    assert missing(found) is None
    assert found.versions() == VERSIONS.replace("\n", " ").strip()
    assert found.path_dir == tmp_path / "26" / "bin" and "--ip6tables=false" in found.flags
    (tmp_path / "26" / "VERSIONS").unlink()
    assert "incomplete" in (missing(found) or "")


def test_a_missing_engine_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMUSTORE_ENGINE_CACHE", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="CI=true makes this a failure"):
        require_engine(find_engine("28"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dockerd 28 not found"):
        require_engine(find_engine("28"))


def run_script(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMUSTORE_ENGINE_CACHE": str(cache)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_fetch_keeps_a_cached_engine_without_network(tmp_path: Path) -> None:
    for tool in ("/usr/sbin/runc", "/usr/bin/tini-static"):  # Debian 12's, paired with the cached engines
        require_binary(tool, "Debian's docker.io (runc, tini) not installed (oracle tier)")
    fake_engine(tmp_path, "26")
    result = run_script(tmp_path, "26")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"engine 26: {VERSIONS.replace(chr(10), ' ')}({tmp_path}/26)\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["26"]  # nothing fetched, no apt state


def test_fetch_refuses_an_unknown_engine(tmp_path: Path) -> None:
    result = run_script(tmp_path, "27")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "fetch-engines: unknown engine '27' (known: 26 28)\n"
