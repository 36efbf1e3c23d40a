"""At most `limit` accepts in any `window_s` seconds, counted from the ledger so restarts do not reset it."""

from __future__ import annotations

import logging

from flows.clock import Clock
from flows.ledger import FriendLedger

__all__ = ["AcceptWindow"]

log = logging.getLogger(__name__)


class AcceptWindow:
    """A sliding window over the accept times in the ledger."""

    def __init__(self, ledger: FriendLedger, clock: Clock, limit: int, window_s: float) -> None:
        self._ledger = ledger
        self._clock = clock
        self._limit = limit
        self._window_s = window_s

    def wait_for_slot(self) -> float:
        """Sleep until one more accept fits in the window; returns the seconds waited."""
        waited = 0.0
        while True:
            now = self._clock.now()
            recent = self._ledger.accept_times_since(now - self._window_s)
            if len(recent) < self._limit:
                return waited
            wait = max(recent[-self._limit] + self._window_s - now, 0.001)
            log.info("%d accepts in the last %.0f s; waiting %.1f s", len(recent), self._window_s, wait)
            self._clock.sleep(wait)
            waited += wait
