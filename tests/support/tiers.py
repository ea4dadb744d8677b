"""Test tiers that need an external binary: skip locally, fail in CI (CI=true)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.engines import Engine, missing


def require_binary(path: str | Path, reason: str) -> None:
    """Return if `path` is an executable file; else pytest.fail when CI == "true", pytest.skip otherwise."""
    if Path(path).is_file() and os.access(path, os.X_OK):
        return
    unavailable(f"{reason}: {path} is missing", reason)


def require_engine(found: Engine) -> None:
    """Return if the engine can run here; else fail (CI=true) or skip, saying how to fetch it."""
    problem = missing(found)
    if problem is not None:
        unavailable(problem, f"{problem} (oracle tier; CI=true makes this a failure)")


def unavailable(failure: str, reason: str) -> NoReturn:
    """pytest.fail(failure) when CI == "true", pytest.skip(reason) otherwise."""
    if os.environ.get("CI") == "true":
        pytest.fail(failure, pytrace=False)
    pytest.skip(reason=reason)
