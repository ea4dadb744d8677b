"""Missing oracle binaries: skip on a developer machine, fail in CI."""

from __future__ import annotations

import sys

import pytest

from tests.support.tiers import require_binary


def test_present_binary_passes() -> None:
    require_binary(sys.executable, "python missing")


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="oracle tier"):
        require_binary("/nonexistent/dockerd", "dockerd not installed (oracle tier)")


def test_missing_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="/nonexistent/dockerd is missing"):
        require_binary("/nonexistent/dockerd", "dockerd not installed (oracle tier)")
