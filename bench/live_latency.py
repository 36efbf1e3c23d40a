"""Live latency benchmark: what a user hears, measured on PulseAudio null sinks.

    .venv/bin/python bench/live_latency.py [--questions N] [--config FILE]

The whole runtime runs live (`python -m machine live`'s code) with its input on the monitor of a "user"
null sink and its output on a "bot" null sink. Each spoken question is played through a combined sink
into both, so one recording of the bot sink holds the question and the reply on one clock. From that
recording: the end of the question's speech (found by cross-correlating the question's file with the
recording) to the first audio of the reply, per turn, with its median and p95; beside it the runtime's
own per-stage table. Writes bench/results/live_latency.json (or --output).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import from_tests
import numpy as np
import scipy.signal
from turn_latency import QUESTIONS, machine_description, write_result

from machine.audio.files import read_wav, to_mono_16k, write_wav
from machine.listen.endpointing import dbfs
from machine.ports import SAMPLE_RATE
from machine.runs.live import LiveRun, run_live
from machine.settings import MachineSettings, load_settings
from machine.speak.piper_synthesizer import PiperSynthesizer
from machine.turn_metrics import TurnRecord, latency_table, median_and_p95, summarise
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings

pulse = from_tests.load("pulse")

_FRAME = SAMPLE_RATE // 100  # 10 ms frames for levels
_VOICED_DB = -45.0
_QUIET_AFTER_REPLY_S = 2.0
_SEARCH_S = 40


def levels_db(audio: np.ndarray) -> np.ndarray:
    """Level of every 10 ms frame."""
    frames = audio[: len(audio) // _FRAME * _FRAME].reshape(-1, _FRAME)
    return np.array([dbfs(frame) for frame in frames])


def last_voiced_s(audio: np.ndarray) -> float:
    """Where the speech in a question file ends (seconds from its start)."""
    voiced = np.nonzero(levels_db(audio) > _VOICED_DB)[0]
    return float((voiced[-1] + 1) * _FRAME / SAMPLE_RATE)


def locate(recording: np.ndarray, clip: np.ndarray, near: int) -> int:
    """The sample where `clip` starts in `recording`, searched from `near` on: the best normalised
    cross-correlation (the bot speaks with the same voice, so loudness alone must not decide)."""
    region = recording[near : near + len(clip) + _SEARCH_S * SAMPLE_RATE]
    if len(region) < len(clip):
        raise ValueError("the recording ends before the question: it was not recorded")
    correlation = scipy.signal.correlate(region, clip, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(np.square(region, dtype=np.float64))])
    window = np.sqrt(energy[len(clip) :] - energy[: -len(clip)]) + 1e-9
    return near + int(np.argmax(correlation / window))


def first_voiced(recording: np.ndarray, start: int, end: int) -> int | None:
    """The first voiced 10 ms frame in `recording[start:end]` (the bot's first audio), if any."""
    voiced = np.nonzero(levels_db(recording[start:end]) > _VOICED_DB)[0]
    return start + int(voiced[0]) * _FRAME if len(voiced) else None


class CombinedSink:
    """A PulseAudio combine sink over two sinks: one stream plays into both on one clock."""

    def __init__(self, first: str, second: str) -> None:
        self.name = f"both_{first}"
        self._module = subprocess.run(
            [
                "pactl",
                "load-module",
                "module-combine-sink",
                f"sink_name={self.name}",
                f"slaves={first},{second}",
                "rate=16000",
                "channels=1",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def close(self) -> None:
        pulse.unload(self._module)


def speak_questions(
    settings: MachineSettings, scratch: Path, count: int
) -> list[tuple[str, Path, np.ndarray]]:
    """The questions as WAV files, spoken a little slower than the voice's default."""
    voice = PiperSynthesizer(settings.synthesizer.model_copy(update={"length_scale": 1.15}))
    questions = []
    for index, text in enumerate(QUESTIONS[:count]):
        spoken = text.format(bot_name=settings.bot_name)
        audio = to_mono_16k(np.concatenate([c.samples for c in voice.synthesize(spoken)]), voice.sample_rate)
        path = scratch / f"q{index:02d}.wav"
        write_wav(path, audio, SAMPLE_RATE)
        questions.append((spoken, path, audio))
    return questions


def converse_live(
    settings: MachineSettings, memory: MemoryStoreSettings, questions: list[Path], recorded: Path
) -> list[TurnRecord]:
    """Run the live runtime on null sinks, play each question and wait for the reply to end; the bot
    sink (question and reply on one clock) is recorded into `recorded`."""
    pulse.ensure_server()
    turns: list[TurnRecord] = []
    stop = threading.Event()
    with pulse.null_sinks("user", "bot") as sinks:
        audio_settings = settings.audio.model_copy(
            update={
                "input_device": f"pulse:{sinks['user']}.monitor",
                "output_device": f"pulse:{sinks['bot']}",
            }
        )
        live = settings.model_copy(update={"audio": audio_settings})
        result: list[LiveRun] = []
        worker = threading.Thread(
            target=lambda: result.append(run_live(live, memory, stop, turns.append)), daemon=True
        )
        worker.start()
        both = CombinedSink(sinks["user"], sinks["bot"])
        meter = pulse.LevelMeter(f"{sinks['bot']}.monitor")
        try:
            time.sleep(25)  # the models load
            with pulse.recording(f"{sinks['bot']}.monitor", recorded):
                for path in questions:
                    before = len(turns)
                    pulse.play(both.name, path)
                    deadline = time.monotonic() + 30
                    while len(turns) == before and time.monotonic() < deadline:
                        time.sleep(0.1)
                    meter.wait(lambda: meter.quiet_for(_QUIET_AFTER_REPLY_S), timeout=30)
        finally:
            meter.close()
            both.close()
            stop.set()
            worker.join(timeout=30)
    return turns


def measure(recording: np.ndarray, questions: list[tuple[str, Path, np.ndarray]]) -> list[dict[str, object]]:
    """End of each question's speech to the first audio of the reply after it (before the next question
    starts), from the recording."""
    starts, at = [], 0
    for _, _, audio in questions:
        starts.append(locate(recording, audio, at))
        at = starts[-1] + len(audio)
    rows: list[dict[str, object]] = []
    for index, (spoken, _, audio) in enumerate(questions):
        end = starts[index] + int(last_voiced_s(audio) * SAMPLE_RATE)
        next_start = starts[index + 1] if index + 1 < len(starts) else len(recording)
        onset = first_voiced(recording, starts[index] + len(audio), next_start)
        latency = None if onset is None else round((onset - end) / SAMPLE_RATE, 4)
        rows.append({"question": spoken, "end_of_speech_to_reply_s": latency})
        print(f"{'no reply' if latency is None else f'{latency * 1000:6.0f} ms'}  {spoken}")
    return rows


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
    settings = load_settings(args.config)
    scratch = args.output.parent / "scratch-live-latency"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        questions = speak_questions(settings, scratch, args.questions)
        memory = load_memory_settings(args.config).model_copy(update={"path": scratch / "memory"})
        turns = converse_live(settings, memory, [path for _, path, _ in questions], scratch / "bot.wav")
        rows = measure(read_wav(scratch / "bot.wav"), questions)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    heard = [
        row["end_of_speech_to_reply_s"] for row in rows if isinstance(row["end_of_speech_to_reply_s"], float)
    ]
    spread = median_and_p95(heard)
    if spread:
        print(
            f"\nend of speech -> first reply audio (from the recording): n={len(heard)}, "
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
