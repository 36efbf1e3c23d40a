"""A conversation over recorded audio: `python -m machine --input PATH --output DIR`.

Each input WAV is one thing a user says. The bot's replies are written to DIR as `reply-NNN.wav`, the
conversation is printed, and each turn's record is printed and appended to DIR/turns.jsonl as one JSON
line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from machine.audio_file import wav_inputs
from machine.recorded import RecordedSource, WavReplySink
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from machine.wiring import build_runtime


def turn_printer(bot_name: str, journal: Path, out: TextIO | None = None) -> Callable[[TurnRecord], None]:
    """Prints each finished turn (the exchange, then its JSON line) and appends the JSON line to `journal`."""

    def show(record: TurnRecord) -> None:
        line = record.to_json()
        stream = out or sys.stdout
        print(f"you: {record.transcript or '(nothing understood)'}", file=stream)
        print(f"{bot_name}: {' '.join(record.reply) or '(no reply: ' + record.outcome + ')'}", file=stream)
        print(line, file=stream, flush=True)
        with journal.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    return show


def run_recorded(settings: MachineSettings, inputs: Path, output: Path, realtime: bool) -> list[TurnRecord]:
    """Run the runtime over the WAV file or folder `inputs`, writing replies and turns.jsonl to `output`."""
    source = RecordedSource(wav_inputs(inputs), settings.recorded, realtime=realtime)
    output.mkdir(parents=True, exist_ok=True)
    journal = output / "turns.jsonl"
    journal.unlink(missing_ok=True)
    sink = WavReplySink(output, realtime=realtime)
    runtime = build_runtime(settings, sink, turn_printer(settings.bot_name, journal))
    return runtime.run(source)
