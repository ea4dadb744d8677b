"""Figures the robustness tests report (trials, faults, escapes, inconsistent roots) for CI output."""

from __future__ import annotations

RECORDED: list[tuple[str, dict[str, int]]] = []


def record(test: str, **figures: int) -> None:
    """Keep a test's figures for the terminal summary and print them (shown with -s)."""
    RECORDED.append((test, dict(figures)))
    print("\n[figures] %s: %s" % (test, ", ".join("%s=%d" % item for item in figures.items())))


def summary_lines() -> list[str]:
    return ["%s: %s" % (test, ", ".join("%s=%d" % item for item in figures.items())) for test, figures in RECORDED]
