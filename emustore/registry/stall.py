"""The stall rule: a transfer that receives too few bytes while it waits on the network fails.

The per-read timeout alone lets a server sending one byte every few seconds keep a pull alive
for ever. A body read under a StallRule fails once, over a window of `window` seconds spent
waiting for it (time spent by the consumer of the bytes does not count, retries and
reconnections do), fewer than `min_bytes` arrived.
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


def watched(chunks: Iterable[bytes], rule: StallRule | None, shown: str) -> Iterator[bytes]:
    """`chunks` as they come, failing with TransferStalled when `rule` is broken (None: no rule)."""
    if rule is None:
        yield from chunks
        return
    source = iter(chunks)
    waited = window_start = 0.0
    arrived = 0
    while True:
        started = time.monotonic()
        data = next(source, None)
        waited += time.monotonic() - started
        if data is None:
            return
        arrived += len(data)
        if waited - window_start >= rule.window:
            if arrived < rule.min_bytes:
                raise TransferStalled(
                    f'Get "{shown}": transfer stalled: {arrived} bytes in {waited - window_start:.1f}s, '
                    f"less than the stall limit of {rule.min_bytes} bytes per {rule.window:g}s"
                )
            window_start, arrived = waited, 0
        yield data
