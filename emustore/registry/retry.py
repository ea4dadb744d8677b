"""When and how long to wait before trying a registry request again: bounded backoff with jitter."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries of one request within `budget` seconds; delays double from `base_delay`."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    budget: float = 120.0

    def backoff(self, failures: int) -> float:
        """Delay after the `failures`-th failure: exponential, capped, with "equal jitter"."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class RetryClock:
    """Counts the failures of one logical request and decides whether another try fits the policy."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self._deadline = time.monotonic() + policy.budget

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Record a failure; the seconds to wait before the next try, or None when none is allowed."""
        self.failures += 1
        if self.failures >= self.policy.attempts:
            return None
        delay = retry_after if retry_after is not None else self.policy.backoff(self.failures)
        if time.monotonic() + delay > self._deadline:
            return None
        return delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if it has one."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
