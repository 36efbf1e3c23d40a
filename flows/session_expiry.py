"""The session-expiry flow: ends idle memory-block sessions, so their memories are forgotten.

With a Chroma server (`memory_store.client: http`) a Prefect worker runs the deployment of
`expire_idle_sessions`, which opens its own connection to the server. With the embedded Chroma only the
runtime may open the store folder, so the runtime runs the same flow in its own process with
`SessionExpiryTimer`, against its own `MemorySystem`. Either way each run shows in the Prefect API/UI.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from prefect import flow, get_run_logger

from memory_store import MemorySystem, load_settings

__all__ = ["SessionExpiryTimer", "expire_idle_sessions"]

log = logging.getLogger(__name__)

_in_process_system: ContextVar[MemorySystem | None] = ContextVar("in_process_memory_system", default=None)


@contextlib.contextmanager
def _memory_system(config_path: str | None) -> Iterator[MemorySystem]:
    running = _in_process_system.get()
    if running is not None:
        yield running
        return
    system = MemorySystem.open(load_settings(Path(config_path) if config_path else None))
    try:
        yield system
    finally:
        system.close()


@flow(name="session-expiry")
def expire_idle_sessions(config_path: str | None = None, start_jitter_s: float = 0.0) -> list[str]:
    """End every memory-block session idle longer than `memory_store.sessions.idle_timeout_s`.

    Returns the names of the blocks whose memories were forgotten. `config_path`: the configuration file
    (default: $COMPANION_CONFIG or conf/default.yaml). `start_jitter_s`: wait a random 0..N seconds first.
    """
    time.sleep(random.uniform(0.0, start_jitter_s))
    with _memory_system(config_path) as system:
        ended = system.expire_idle_sessions()
    get_run_logger().info("ended %d idle session(s): %s", len(ended), ", ".join(ended) or "none")
    return ended


class SessionExpiryTimer:
    """Runs `expire_idle_sessions` in this process on a timer, against `system` (for the embedded Chroma)."""

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
        """Start the timer thread; the first run comes after one interval."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the timer and wait for a run in progress to finish."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        _in_process_system.set(self._system)
        while not self._stop.wait(self._every_s + random.uniform(0.0, self._jitter_s)):
            try:
                expire_idle_sessions()
            except Exception:
                log.exception("the session-expiry flow failed; it runs again at the next interval")
