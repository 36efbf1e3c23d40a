"""A live conversation on audio devices: `python -m machine` with the default configuration.

It captures the configured input device, speaks on the configured output device, prints each turn as it
ends, and runs until Ctrl-C or SIGTERM, which stop it cleanly (streams closed) within a second. Nothing
it hears is written anywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from machine.app import LiveAudio, Parts, open_app
from machine.runs.recorded import print_turn
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveRun:
    """What a live run did."""

    turns: list[TurnRecord]
    capture_blocks_dropped: int
    """Blocks the capture callback could not queue (the processing fell behind)."""
    chunks_dropped: int
    """Chunks the processing worker's queue could not take."""


def run_live(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    stop: threading.Event | None = None,
    on_turn: Callable[[TurnRecord], None] | None = None,
    fresh: bool = False,
    parts: Parts | None = None,
) -> LiveRun:
    """Converse on the configured devices until a signal or `stop` ends it; `on_turn` also sees each turn.

    SIGINT/SIGTERM (and Ctrl-Break on Windows) stop the runtime; SIGUSR1 (POSIX) or an OSC forget
    (`python -m machine forget`, on every platform) ends the memory session at once (everything is
    forgotten) and resets the turn in flight. `fresh` forgets the memory block's session before
    listening starts (`--fresh`)."""

    def show(record: TurnRecord) -> None:
        print_turn(settings.bot_name, record)
        if on_turn is not None:
            on_turn(record)

    io = LiveAudio()
    with open_app(settings, memory_settings, io, show, parts=parts, fresh=fresh, stop=stop) as app:
        turns = app.run(
            on_listening=lambda: print(f"{settings.bot_name} is listening (Ctrl-C to stop)", flush=True)
        )
        asked = app.signals.asked_at
    if asked is not None:
        log.info("stopped %.3f s after being asked to", time.monotonic() - asked)
    device = io.device_source
    runtime_dropped = getattr(app.runtime, "dropped_chunks", 0)
    return LiveRun(turns, getattr(device, "dropped_blocks", 0), runtime_dropped)
