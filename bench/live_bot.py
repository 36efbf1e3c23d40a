"""The live runtime on PulseAudio null sinks, for the live benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import from_tests

from machine.runs.live import LiveRun, run_live
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings

pulse = from_tests.load("pulse")


@dataclass
class NullSinkBot:
    """The sinks (`user`: what the bot hears, on its monitor; `bot`: where it speaks), the turns as they
    finish, and, once stopped, what the run came to."""

    sinks: dict[str, str]
    turns: list[TurnRecord] = field(default_factory=list)
    result: list[LiveRun] = field(default_factory=list)


@contextmanager
def live_on_null_sinks(settings: MachineSettings, memory: MemoryStoreSettings) -> Iterator[NullSinkBot]:
    """Run `python -m machine`'s live runtime in a thread between two fresh null sinks; stopped at exit."""
    pulse.ensure_server()
    stop = threading.Event()
    with pulse.null_sinks("user", "bot") as sinks:
        audio = settings.audio.model_copy(
            update={
                "input_device": f"pulse:{sinks['user']}.monitor",
                "output_device": f"pulse:{sinks['bot']}",
            }
        )
        live = settings.model_copy(update={"audio": audio})
        bot = NullSinkBot(sinks)
        worker = threading.Thread(
            target=lambda: bot.result.append(run_live(live, memory, stop, bot.turns.append)), daemon=True
        )
        worker.start()
        try:
            yield bot
        finally:
            stop.set()
            worker.join(timeout=30)
