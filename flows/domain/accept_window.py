"""At most `limit` accept requests in any `window_s` seconds as VRChat sees them, counted in the ledger
(restarts keep the count).

Every request that reaches VRChat counts, retries included: the gateway takes a slot before each attempt,
after any backoff sleep, so the recorded time is the time the request went on the wire, and the step
settles the attempts when the answer is back. VRChat counts a request when it arrives, somewhere between
the two: a request is counted until `window_s` after its answer (see `FriendLedger.claim_accept_slot`), so
a request delayed on its way cannot put one more than `limit` into VRChat's window.
"""

from __future__ import annotations

import logging

from flows.domain.clock import Clock
from flows.domain.ledger import FriendLedger

__all__ = ["AcceptWindow"]

log = logging.getLogger(__name__)


class AcceptWindow:
    """A sliding window over the accept requests recorded in the ledger."""

    def __init__(
        self, ledger: FriendLedger, clock: Clock, limit: int, window_s: float, in_flight_s: float
    ) -> None:
        """`in_flight_s`: the longest a request can be on its way (the client's connect and read timeouts)."""
        self._ledger = ledger
        self._clock = clock
        self._limit = limit
        self._window_s = window_s
        self._in_flight_s = in_flight_s

    def take_slot(self, notification_id: str) -> float:
        """Sleep until one more accept request fits in the window, then count it (for `notification_id`);
        returns the seconds waited. Call it right before the request is sent."""
        waited = 0.0
        while True:
            wait = self._ledger.claim_accept_slot(
                notification_id, self._clock.now(), self._limit, self._window_s, self._in_flight_s
            )
            if wait == 0.0:
                return waited
            log.info(
                "%d accept requests in the last %.0f s; waiting %.1f s", self._limit, self._window_s, wait
            )
            self._clock.sleep(wait)
            waited += wait

    def settle(self, notification_id: str) -> None:
        """The accept requests for `notification_id` have their answers (or failed): from now on each counts
        until `window_s` from now, not from when it was sent."""
        self._ledger.settle_accept_attempts(notification_id, self._clock.now())
