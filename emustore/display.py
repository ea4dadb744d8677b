"""Numbers and tables as the docker CLI prints them (go-units sizes and durations, tabwriter)."""

from __future__ import annotations

import time
from collections.abc import Sequence

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `%.<precision>g` ("1.98MB", "0B")."""
    index = 0
    while size >= 1000 and index < len(_UNITS) - 1:
        size /= 1000
        index += 1
    return "%.*g%s" % (precision, size, _UNITS[index])


def human_duration(seconds: float) -> str:
    """go-units HumanDuration ("Less than a second", "About an hour", "3 years")."""
    if int(seconds) < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return "%d seconds" % seconds
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds / 3600) // 24 // 365)


def since(unix: int, now: float | None = None) -> str:
    """The CREATED column: "<duration> ago"."""
    return human_duration((time.time() if now is None else now) - unix) + " ago"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """tabwriter(minwidth 10, padding 3) as the CLI's tables use it; the last column is unpadded."""
    lines = [list(header)] + [list(r) for r in rows]
    widths = [max(10, max(len(line[i]) for line in lines) + 3) for i in range(len(header) - 1)]
    return "".join(
        "".join(cell.ljust(width) for cell, width in zip(line, widths)) + line[-1] + "\n" for line in lines
    )


_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def binary_size(size: float) -> str:
    """ctr's sizes: binary units, one decimal ("1009.5 KiB", "0.0 B")."""
    index = 0
    while size >= 1024 and index < len(_BINARY_UNITS) - 1:
        size /= 1024
        index += 1
    return "%.1f %s" % (size, _BINARY_UNITS[index])


def ctr_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """ctr's tables (tabwriter, padding 1, every cell tab-terminated): each column one wider than its widest cell."""
    lines = [list(header)] + [list(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) + 1 for i in range(len(header))]
    return "".join("".join(cell.ljust(width) for cell, width in zip(line, widths)) + "\n" for line in lines)
