"""At most `limit` accept requests in any `window_s` seconds, counted in the ledger (restarts keep the count).

Every request that reaches VRChat counts, retries included: the gateway takes a slot before each attempt,
after any backoff sleep, so the recorded time is the time the request went on the wire.
"""

from __future__ import annotations

import logging

from flows.domain.clock import Clock
from flows.domain.ledger import FriendLedger

__all__ = ["AcceptWindow"]

log = logging.getLogger(__name__)


class AcceptWindow:
    """A sliding window over the accept requests recorded in the ledger."""

    def __init__(self, ledger: FriendLedger, clock: Clock, limit: int, window_s: float) -> None:
        self._ledger = ledger
        self._clock = clock
        self._limit = limit
        self._window_s = window_s

    def take_slot(self, notification_id: str) -> float:
        """Sleep until one more accept request fits in the window, then count it (for `notification_id`);
        returns the seconds waited. Call it right before the request is sent."""
        waited = 0.0
        while True:
            wait = self._ledger.claim_accept_slot(
                notification_id, self._clock.now(), self._limit, self._window_s
            )
            if wait == 0.0:
                return waited
            log.info(
                "%d accept requests in the last %.0f s; waiting %.1f s", self._limit, self._window_s, wait
            )
            self._clock.sleep(wait)
            waited += wait
