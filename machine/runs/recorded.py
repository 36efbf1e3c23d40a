"""A conversation over recorded audio: `python -m machine --input PATH --output DIR`.

Each input WAV is one thing a user says. The bot's replies are written to DIR as `reply-NNN.wav`, the
conversation is printed, and each turn's record is printed and appended to DIR/turns.jsonl as one JSON
line (the file is always written, empty when no one spoke). A file in which no speech was heard is named
at the end: `no speech heard in FILE`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from machine.app import Parts, RecordedAudio, open_app
from machine.audio.files import wav_inputs
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings


def print_turn(bot_name: str, record: TurnRecord, out: TextIO | None = None) -> None:
    """Prints a finished turn: the exchange, then its JSON line."""
    stream = out or sys.stdout
    print(f"you: {record.transcript or '(nothing understood)'}", file=stream)
    print(f"{bot_name}: {' '.join(record.reply) or '(no reply: ' + record.outcome + ')'}", file=stream)
    print(record.to_json(), file=stream, flush=True)


def turn_printer(bot_name: str, journal: Path) -> Callable[[TurnRecord], None]:
    """Prints each finished turn and appends its JSON line to `journal`."""

    def show(record: TurnRecord) -> None:
        print_turn(bot_name, record)
        with journal.open("a", encoding="utf-8") as handle:
            handle.write(record.to_json() + "\n")

    return show


def run_recorded(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    inputs: Path,
    output: Path,
    realtime: bool,
    fresh_session: bool = False,
    parts: Parts | None = None,
) -> list[TurnRecord]:
    """Run the runtime over the WAV file or folder `inputs`, writing replies and turns.jsonl to `output`.

    The bot remembers in its memory block (`settings.memory_block`) as it does live; `fresh_session`
    forgets the block's session before the first file (`--fresh`)."""
    finished = 0  # turns reported so far: the source tells from it which files started none
    io = RecordedAudio(wav_inputs(inputs), output, realtime, turns_so_far=lambda: finished)
    output.mkdir(parents=True, exist_ok=True)
    journal = output / "turns.jsonl"
    journal.write_text("", encoding="utf-8")  # this run's turns only; empty when no speech was heard
    show = turn_printer(settings.bot_name, journal)

    def on_turn(record: TurnRecord) -> None:
        nonlocal finished
        show(record)
        finished += 1

    with open_app(settings, memory_settings, io, on_turn, parts=parts, fresh=fresh_session) as app:
        records = app.run()
    for path in io.unheard:
        print(f"no speech heard in {path}", flush=True)
    return records
