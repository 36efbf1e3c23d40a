"""How long to wait before the next attempt: exponential with jitter, or what VRChat's Retry-After says."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["BackoffPolicy", "parse_retry_after"]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - datetime.fromtimestamp(now, timezone.utc).timestamp())


@dataclass(frozen=True)
class BackoffPolicy:
    """Attempt `n` (1-based) that failed waits ``base_s * 2**(n-1)`` (capped at `max_s`), spread by ±`jitter`.

    A Retry-After from VRChat replaces the computed wait; one longer than `max_s` ends the attempts, so a
    run never sleeps for longer than the operator allowed.
    """

    max_attempts: int
    base_s: float
    max_s: float
    jitter: float

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """The wait before attempt `attempt + 1`, or None when no further attempt should be made."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_s else None
        computed = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return computed * (1.0 + self.jitter * rng.uniform(-1.0, 1.0))
