"""Figures the robustness tests report (trials, faults, escapes, inconsistent roots) for CI output."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

RECORDED: list[tuple[str, dict[str, int]]] = []


def record(test: str, **figures: int) -> None:
    """Keep a test's figures for the terminal summary and print them (shown with -s)."""
    RECORDED.append((test, dict(figures)))
    print("\n[figures] %s: %s" % (test, ", ".join("%s=%d" % item for item in figures.items())))


def summary_lines() -> list[str]:
    return ["%s: %s" % (test, ", ".join("%s=%d" % item for item in figures.items())) for test, figures in RECORDED]


def module_figures(test: str, figures: dict[str, int], check: Callable[[dict[str, int], dict[str, int]], None]) -> Any:
    """An autouse fixture for a module whose cases add to `figures`: once all its selected tests
    ran, in whatever order or selection, the figures are recorded under `test` and held to
    `check(figures, selected)` (`selected`, a Counter: how many of each test function of the module ran).
    Nothing is recorded or checked when no case added anything (the module's cases were not run)."""

    @pytest.fixture(scope="module", autouse=True)
    def figures_of_module(request: pytest.FixtureRequest) -> Iterator[None]:
        for key in figures:
            figures[key] = 0
        yield
        if not any(figures.values()):
            return
        selected = Counter(
            getattr(item, "originalname", item.name)
            for item in request.session.items
            if getattr(item, "module", None) is request.module
        )
        record(test, **figures)
        check(figures, selected)

    return figures_of_module
