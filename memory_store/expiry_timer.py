"""Ending idle sessions on a timer, in the process that owns an embedded store.

With the embedded Chroma only one process may open the store folder, so that process (the runtime) ends
idle sessions itself: :class:`SessionExpiryTimer` calls :meth:`MemorySystem.expire_idle_sessions` every
`sessions.expiry_check_every_s` (plus a random jitter). With a Chroma server, the Prefect flow in
`flows/session_expiry.py` calls the same method from a worker instead.
"""

from __future__ import annotations

import logging
import random
import threading

from memory_store.system import MemorySystem

log = logging.getLogger(__name__)


class SessionExpiryTimer:
    """Calls `system.expire_idle_sessions()` on a timer thread until stopped."""

    def __init__(
        self, system: MemorySystem, every_s: float | None = None, jitter_s: float | None = None
    ) -> None:
        sessions = system.settings.sessions
        self._system = system
        self._every_s = sessions.expiry_check_every_s if every_s is None else every_s
        self._jitter_s = sessions.expiry_jitter_s if jitter_s is None else jitter_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-expiry", daemon=True)

    def start(self) -> None:
        """Start the timer thread; the first check comes after one interval."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the timer and wait for a check in progress to finish."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s + random.uniform(0.0, self._jitter_s)):
            try:
                self._system.expire_idle_sessions()
            except Exception:
                log.exception("ending idle sessions failed; it is tried again at the next interval")
