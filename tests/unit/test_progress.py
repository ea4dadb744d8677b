"""docker's progress column: sizes and the bar."""

from __future__ import annotations

import io

import pytest

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
    reporter.REDRAW_EVERY = 0  # no time limit: only the unchanged text keeps the line as it is
    reporter.layer("sha256:" + "a" * 64, "Pulling fs layer")
    reporter.progress("sha256:" + "a" * 64, 1_000_000, 10_000_000)
    written = out.getvalue()
    reporter.progress("sha256:" + "a" * 64, 10, 10_000_000)  # still "1MB/10MB": nothing to redraw
    assert out.getvalue() == written
    assert written == "aaaaaaaaaaaa: Pulling fs layer\n\x1b[1A\r\x1b[2Kaaaaaaaaaaaa: Downloading      1MB/10MB\x1b[1B\r"


def test_download_progress_is_redrawn_at_most_every_tenth_of_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("emustore.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    reporter = TerminalReporter(out, columns=80)
    layer = "sha256:" + "a" * 64
    for _ in range(50):  # 50 chunks of 100 kB within the same instant: the first is drawn
        reporter.progress(layer, 100_000, 10_000_000)
    assert out.getvalue().count("Downloading") == 1
    now[0] += 0.25
    reporter.progress(layer, 100_000, 10_000_000)
    assert out.getvalue().count("Downloading") == 2 and "5.1MB/10MB" in out.getvalue()
    reporter.progress(layer, 4_900_000, 10_000_000)  # the last bytes are shown at once
    assert out.getvalue().endswith("aaaaaaaaaaaa: Verifying Checksum\x1b[1B\r")
