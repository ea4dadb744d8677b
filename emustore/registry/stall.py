"""The stall rule: a transfer that receives too few bytes while it waits on the network fails.

The per-read timeout alone lets a server sending one byte every few seconds keep a pull alive
for ever. A body read under a StallRule fails once, over a window of `window` seconds spent
waiting for it (time spent by the consumer of the bytes does not count, retries and
reconnections do), fewer than `min_bytes` arrived.
The same rule also holds on each connection's socket, response headers included
(registry/stallsocket.py): there a request sent starts a new window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from emustore.errors import RegistryError

STALL_ENV = "EMUSTORE_STALL_LIMIT"
DEFAULT_STALL_LIMIT = "65536/60"


class TransferStalled(RegistryError):
    """A transfer that made too little progress for too long (never retried)."""


@dataclass(frozen=True)
class StallRule:
    """Fail a transfer receiving fewer than `min_bytes` within any `window` seconds of waiting."""

    min_bytes: int = 65536
    window: float = 60.0

    def __str__(self) -> str:
        return f"{self.min_bytes}/{self.window:g}"


def parse_stall_limit(text: str) -> StallRule | None:
    """BYTES/SECONDS (e.g. 65536/60) as a StallRule; "0" or "off" turns the rule off (None)."""
    value = text.strip().lower()
    if value in ("0", "off"):
        return None
    count, sep, seconds = value.partition("/")
    try:
        rule = StallRule(int(count), float(seconds)) if sep else None
    except ValueError:
        rule = None
    if rule is None or rule.min_bytes <= 0 or not 0 < rule.window < float("inf"):
        raise ValueError(f"invalid stall limit {text!r}: want BYTES/SECONDS like {DEFAULT_STALL_LIMIT}, or off")
    return rule


class StallWindow:
    """The bytes received and the seconds spent waiting for them in the current window of `rule`."""

    def __init__(self, rule: StallRule) -> None:
        self.rule = rule
        self.arrived = 0
        self.waited = 0.0

    def restart(self) -> None:
        """Start a new window (e.g. a new request on the same connection)."""
        self.arrived, self.waited = 0, 0.0

    def left(self) -> float:
        """Seconds of waiting before this window closes (always > 0 between counts)."""
        return self.rule.window - self.waited

    def count(self, received: int, waited: float) -> str | None:
        """Add one read; when that closes the window, why the rule is broken (None: kept, a new window starts)."""
        self.arrived += received
        self.waited += waited
        if self.waited < self.rule.window:
            return None
        if self.arrived < self.rule.min_bytes:
            return (
                f"transfer stalled: {self.arrived} bytes in {self.waited:.1f}s, "
                f"less than the stall limit of {self.rule.min_bytes} bytes per {self.rule.window:g}s"
            )
        self.restart()
        return None


def stalled(method: str, shown: str, reason: str) -> TransferStalled:
    """The one-line error for a request to `shown` broken off by the stall rule (`reason` from StallWindow)."""
    return TransferStalled(f'{method.title()} "{shown}": {reason}')


def watched(chunks: Iterable[bytes], rule: StallRule | None, shown: str) -> Iterator[bytes]:
    """`chunks` as they come, failing with TransferStalled when `rule` is broken (None: no rule)."""
    if rule is None:
        yield from chunks
        return
    source = iter(chunks)
    window = StallWindow(rule)
    while True:
        started = time.monotonic()
        data = next(source, None)
        waited = time.monotonic() - started
        if data is None:
            return
        broken = window.count(len(data), waited)
        if broken is not None:
            raise stalled("GET", shown, broken)
        yield data
