"""A live conversation on audio devices: `python -m machine` with the default configuration.

It captures the configured input device, speaks on the configured output device, prints each turn as it
ends, and runs until Ctrl-C or SIGTERM, which stop it cleanly (streams closed) within a second. Nothing
it hears is written anywhere.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from machine.audio.capture import DeviceSource
from machine.audio.devices import describe, list_devices, open_portaudio, resolve
from machine.audio.playback import DeviceSink
from machine.recorded_conversation import print_turn
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from machine.wiring import build_runtime


def device_table() -> str:
    """`python -m machine devices`: every input and output device with its default rate."""
    audio = open_portaudio()
    try:
        return describe(list_devices(audio))
    finally:
        audio.terminate()


def run_live(
    settings: MachineSettings,
    stop: threading.Event | None = None,
    on_turn: Callable[[TurnRecord], None] | None = None,
) -> list[TurnRecord]:
    """Converse on the configured devices until a signal or `stop` ends it; `on_turn` also sees each turn."""
    audio = open_portaudio()
    try:
        resolve(audio, settings.audio.input_device, "input")  # a wrong device fails before models load
        sink = DeviceSink(audio, settings.audio)

        def show(record: TurnRecord) -> None:
            print_turn(settings.bot_name, record)
            if on_turn is not None:
                on_turn(record)

        runtime = build_runtime(settings, sink, show, echo_reference=lambda: sink.level_db)
        source = DeviceSource(audio, settings.audio, on_interrupted=runtime.reset)

        def end(signum: int, frame: FrameType | None) -> None:
            runtime.stop()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, end)
            signal.signal(signal.SIGINT, end)
        if stop is not None:

            def stop_when_set() -> None:
                stop.wait()
                runtime.stop()

            threading.Thread(target=stop_when_set, daemon=True).start()
        print(f"{settings.bot_name} is listening (Ctrl-C to stop)", flush=True)
        try:
            return runtime.run(source)
        finally:
            sink.close()
    finally:
        audio.terminate()
