"""The session-expiry flow: ends idle memory-block sessions, so their memories are forgotten.

With a Chroma server (`memory_store.client: http`) a Prefect worker runs the deployment of
`expire_idle_sessions`, which opens its own connection to the server and calls
:meth:`MemorySystem.expire_idle_sessions`; each run shows in the Prefect API/UI. With the embedded Chroma
only the runtime may open the store folder, so it calls the same method on a plain timer
(:class:`memory_store.expiry_timer.SessionExpiryTimer`), with no Prefect in the voice process. A run of this
flow (`python -m flows serve` serves it) that finds the embedded store held by a runtime on the same machine
leaves it to that runtime and completes, saying so.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from prefect import flow, get_run_logger

from memory_store import MemorySystem, load_settings
from memory_store.errors import StoreInUseError

__all__ = ["expire_idle_sessions"]


@flow(name="session-expiry")
def expire_idle_sessions(config_path: str | None = None, start_jitter_s: float = 0.0) -> list[str]:
    """End every memory-block session idle longer than `memory_store.sessions.idle_timeout_s`.

    Returns the names of the blocks whose memories were forgotten. `config_path`: the configuration file
    (default: $COMPANION_CONFIG or conf/default.yaml). `start_jitter_s`: wait a random 0..N seconds first.
    """
    time.sleep(random.uniform(0.0, start_jitter_s))
    try:
        system = MemorySystem.open(load_settings(Path(config_path) if config_path else None))
    except StoreInUseError as exc:  # the runtime holds its embedded store and expires sessions itself
        get_run_logger().info(
            "left to the runtime that holds the store, which ends its own idle sessions: %s", exc
        )
        return []
    try:
        ended = system.expire_idle_sessions()
    finally:
        system.close()
    get_run_logger().info("ended %d idle session(s): %s", len(ended), ", ".join(ended) or "none")
    return ended
