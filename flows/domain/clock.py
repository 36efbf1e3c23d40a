"""Wall-clock time and sleeping behind one small interface, so tests can inject a fake clock."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Seconds since the epoch (persisted in the ledger, so it must survive restarts) and sleeping."""

    def now(self) -> float:
        """Current time, seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """`time.time()`."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """`time.sleep()`."""
        if seconds > 0:
            time.sleep(seconds)
