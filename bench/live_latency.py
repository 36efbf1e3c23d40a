"""Live latency benchmark: what a user hears, measured on PulseAudio null sinks.

    .venv/bin/python bench/live_latency.py [--questions N] [--config FILE]

The whole runtime runs live (`python -m machine live`'s code) with its input on the monitor of a "user"
null sink and its output on a "bot" null sink. Each spoken question is played into the user's sink while
the levels of both sinks' monitors are read (parec, 20 ms blocks, one clock): from the last loud block
of the question to the first loud block of the reply, per turn, with its median and p95; beside it the
runtime's own per-stage table. Writes bench/results/live_latency.json (or --output).
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import from_tests
import numpy as np
from live_bot import live_on_null_sinks
from turn_latency import QUESTIONS, machine_description, write_result

from machine.audio.files import to_mono_16k, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.ports import SAMPLE_RATE
from machine.process.malloc_arenas import tune_malloc
from machine.settings import MachineSettings, load_settings
from machine.turn_metrics import TurnRecord, latency_table, median_and_p95, summarise
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings

pulse = from_tests.load("pulse")

_VOICED_DB = -45.0
_QUIET_AFTER_REPLY_S = 2.0


def speak_questions(settings: MachineSettings, scratch: Path, count: int) -> list[tuple[str, Path]]:
    """The questions as WAV files, spoken a little slower than the voice's default."""
    voice = PiperSynthesizer(settings.synthesizer.model_copy(update={"length_scale": 1.15}))
    questions = []
    for index, text in enumerate(QUESTIONS[:count]):
        spoken = text.format(bot_name=settings.bot_name)
        audio = to_mono_16k(np.concatenate([c.samples for c in voice.synthesize(spoken)]), voice.sample_rate)
        path = scratch / f"q{index:02d}.wav"
        write_wav(path, audio, SAMPLE_RATE)
        questions.append((spoken, path))
    return questions


def latency(
    user: list[tuple[float, float]], bot: list[tuple[float, float]], since: float, until: float = math.inf
) -> float | None:
    """From the last loud 20 ms on the user's sink in [`since`, `until`) to the first loud 20 ms on the
    bot's sink after it and before `until` (None when the bot said nothing)."""
    spoken = [at for at, level in user if since <= at < until and level > _VOICED_DB]
    if not spoken:
        return None
    replied = next((at for at, level in bot if spoken[-1] < at < until and level > _VOICED_DB), None)
    return None if replied is None else round(replied - spoken[-1], 4)


def converse_live(
    settings: MachineSettings, memory: MemoryStoreSettings, questions: list[tuple[str, Path]]
) -> tuple[list[TurnRecord], list[dict[str, object]]]:
    """Run the live runtime on null sinks, play each question into the user's sink and wait for the reply
    to end; the levels of both sinks are read meanwhile (parec, 20 ms blocks, on one clock)."""
    rows: list[dict[str, object]] = []
    with live_on_null_sinks(settings, memory) as live:
        sinks, turns = live.sinks, live.turns
        user = pulse.LevelMeter(f"{sinks['user']}.monitor")
        bot = pulse.LevelMeter(f"{sinks['bot']}.monitor")
        try:
            time.sleep(25)  # the models load and warm up
            for spoken, path in questions:
                before, since = len(turns), time.monotonic()
                pulse.play(sinks["user"], path)
                deadline = time.monotonic() + 30
                while len(turns) == before and time.monotonic() < deadline:
                    time.sleep(0.1)
                bot.wait(lambda: bot.quiet_for(_QUIET_AFTER_REPLY_S), timeout=30)
                heard = latency(user.levels, bot.levels, since)
                rows.append({"question": spoken, "end_of_speech_to_reply_s": heard})
                print(f"{'no reply' if heard is None else f'{heard * 1000:6.0f} ms'}  {spoken}")
        finally:
            user.close()
            bot.close()
    return turns, rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help=f"1-{len(QUESTIONS)}")
    parser.add_argument("--config", type=Path)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "live_latency.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tune_malloc()  # as `python -m machine` does
    settings = load_settings(args.config)
    scratch = args.output.parent / "scratch-live-latency"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        questions = speak_questions(settings, scratch, args.questions)
        memory = load_memory_settings(args.config).model_copy(update={"path": scratch / "memory"})
        turns, rows = converse_live(settings, memory, questions)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    heard = [
        row["end_of_speech_to_reply_s"] for row in rows if isinstance(row["end_of_speech_to_reply_s"], float)
    ]
    spread = median_and_p95(heard)
    if spread:
        print(
            f"\nend of speech -> first reply audio (from the sinks' levels): n={len(heard)}, "
            f"median {spread['median'] * 1000:.0f} ms, p95 {spread['p95'] * 1000:.0f} ms"
        )
    print("\n" + latency_table(turns))
    write_result(
        args.output,
        {
            "benchmark": "live_latency",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "questions": len(questions),
            "replies_heard": len(heard),
            "end_of_speech_to_reply_s": {key: round(value, 4) for key, value in spread.items()},
            "per_question": rows,
            "stages_s": {
                name: {key: round(value, 4) for key, value in values.items()}
                for name, values in summarise(turns).items()
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
