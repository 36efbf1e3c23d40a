"""A live conversation on audio devices: `python -m machine` with the default configuration.

It captures the configured input device, speaks on the configured output device, prints each turn as it
ends, and runs until Ctrl-C or SIGTERM, which stop it cleanly (streams closed) within a second. Nothing
it hears is written anywhere.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from machine.audio.capture import DeviceSource
from machine.audio.devices import open_portaudio, resolve
from machine.audio.playback import DeviceSink
from machine.listen.echo_gate import PlaybackLevels
from machine.runs.memory import BlockMemory, open_memory
from machine.runs.recorded import print_turn
from machine.runtime import Runtime
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from machine.wiring import build_runtime
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
) -> LiveRun:
    """Converse on the configured devices until a signal or `stop` ends it; `on_turn` also sees each turn.

    SIGINT/SIGTERM stop the runtime; SIGUSR1 ends the memory session at once (everything is forgotten)
    and resets the turn in flight. `fresh` forgets the memory block's session before listening starts
    (`--fresh`)."""
    audio = open_portaudio()
    try:
        resolve(audio, settings.audio.input_device, "input")  # a wrong device fails before models load
        levels = PlaybackLevels()
        sink = DeviceSink(audio, settings.audio, levels)
        try:
            with open_memory(memory_settings, settings.memory_block, fresh=fresh) as memory:

                def show(record: TurnRecord) -> None:
                    print_turn(settings.bot_name, record)
                    if on_turn is not None:
                        on_turn(record)

                runtime = build_runtime(
                    settings, memory, sink, show, playback_levels=levels, embedder=memory.embedder
                )
                source = DeviceSource(audio, settings.audio, on_interrupted=runtime.reset)
                asked = _handle_signals(runtime, memory, stop)
                print(f"{settings.bot_name} is listening (Ctrl-C to stop)", flush=True)
                turns = runtime.run(source)
        finally:
            sink.close()
        if asked:
            log.info("stopped %.3f s after being asked to", time.monotonic() - asked[0])
        return LiveRun(turns, source.dropped_blocks, runtime.dropped_chunks)
    finally:
        audio.terminate()


def _handle_signals(runtime: Runtime, memory: BlockMemory, stop: threading.Event | None) -> list[float]:
    """Installs the handlers; the list returned receives the time a stop was asked for."""
    asked: list[float] = []

    def end(signum: int, frame: FrameType | None) -> None:
        asked.append(time.monotonic())
        runtime.stop()

    def forget(signum: int, frame: FrameType | None) -> None:
        runtime.forget(memory.forget)  # through the loop: after the turn in flight is reset

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, end)
        signal.signal(signal.SIGINT, end)
        if hasattr(signal, "SIGUSR1"):  # POSIX only: Windows has no SIGUSR1
            signal.signal(signal.SIGUSR1, forget)
    if stop is not None:

        def stop_when_set() -> None:
            stop.wait()
            asked.append(time.monotonic())
            runtime.stop()

        threading.Thread(target=stop_when_set, daemon=True).start()
    return asked
