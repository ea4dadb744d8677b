"""Test tiers that need an external binary: skip locally, fail in CI (CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_binary(path: str | Path, reason: str) -> None:
    """Return if `path` is an executable file; else pytest.fail when CI == "true", pytest.skip otherwise."""
    if Path(path).is_file() and os.access(path, os.X_OK):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: {path} is missing", pytrace=False)
    pytest.skip(reason=reason)
