"""docker's progress column: sizes and the bar."""

from __future__ import annotations

import io

from emustore.progress import TerminalReporter, human_size, progress_text


def test_human_size_is_decimal_with_four_digits() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1982256, 52_345_678, 3 * 10**9)] == [
        "0B", "999B", "1kB", "1.982MB", "52.35MB", "3GB",
    ]


def test_bar_fills_by_halves_of_percent() -> None:
    assert progress_text(500, 1000, bar=True) == "[" + "=" * 25 + ">" + " " * 25 + "]     500B/1kB"
    assert progress_text(0, 4_000_000, bar=True) == "[>" + " " * 50 + "]       0B/4MB"
    assert progress_text(1_000_000, 4_000_000, bar=False) == "     1MB/4MB"
    assert progress_text(12345, None, bar=True) == " 12.35kB"


def test_unchanged_lines_are_not_redrawn() -> None:
    out = io.StringIO()
    reporter = TerminalReporter(out, columns=80)
    reporter.layer("sha256:" + "a" * 64, "Pulling fs layer")
    reporter.progress("sha256:" + "a" * 64, 1_000_000, 10_000_000)
    written = out.getvalue()
    reporter.progress("sha256:" + "a" * 64, 10, 10_000_000)  # still "1MB/10MB": nothing to redraw
    assert out.getvalue() == written
    assert written == "aaaaaaaaaaaa: Pulling fs layer\n\x1b[1A\r\x1b[2Kaaaaaaaaaaaa: Downloading      1MB/10MB\x1b[1B\r"
