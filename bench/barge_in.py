"""Live barge-in and echo benchmark on PulseAudio null sinks, with the whole runtime on the real models.

    .venv/bin/python bench/barge_in.py [--tries 5] [--loopback-minutes 2]

1. Barge-in (separate cables, `barge_in: true`): a user as loud as the bot talks over a long reply, --tries
   times. The levels of both cables are read live with parec; the stop time runs from the user's first
   loud 20 ms on their cable to the start of 300 ms of silence on the bot's. Goal: the bot stops within
   `barge_in_ms` + 150 ms and the next turn answers what the user said, in at least 4 of 5 tries. So that
   the bot is surely mid-sentence when the user starts, its replies come from a scripted storyteller
   (long sentences of words drawn at random) instead of the chat model; everything else is real.
2. Echo (as configured: half-duplex by default; `MACHINE_AUDIO__BARGE_IN=true` runs it with barge-in on):
   the bot's voice comes back on its input 1 s late (module-loopback), and a question is asked every 20 s
   for --loopback-minutes. Goal: every turn answers a question, none the bot's own voice, and with
   barge-in on no reply is stopped by its own echo.

Prints a table and writes bench/results/barge_in.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import from_tests
import numpy as np
from turn_latency import machine_description

from machine.app import Parts
from machine.audio.files import to_mono_16k, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.ports import SAMPLE_RATE, ChatMessage, ReplyStream, Sampling
from machine.runs.live import run_live
from machine.settings import MachineSettings, load_settings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings

pulse = from_tests.load("pulse")
speech = from_tests.load("speech")

QUESTION = "Celeste, can you tell me a long story about the moon and the stars?"
INTERRUPTIONS = [
    "What is your favourite colour?",
    "Do you like dogs or cats better?",
    "Where do you live?",
    "What time is it there?",
    "Can you sing a song for me?",
]
VOCABULARY = [
    *("little", "fox", "lived", "edge", "very", "old", "forest", "full", "tall", "trees", "quiet", "rivers"),
    *("every", "morning", "walked", "down", "river", "drink", "watch", "fish", "jumping", "bright", "water"),
    *("evening", "came", "home", "warm", "stars", "moon", "the", "a", "and", "to", "of", "in", "there"),
    *("was", "who", "at", "with", "we", "it", "is", "on", "when", "they", "all", "one", "day", "time"),
]


US_SPELLING = {"favourite": "favorite", "colour": "color"}


def answered(said: str, heard: str) -> bool:
    """Whether the next turn is what the user said: word error rate at most 0.35 (as the live tests allow
    whisper tiny), British and American spellings alike."""

    def us(text: str) -> str:
        return " ".join(US_SPELLING.get(word, word) for word in speech.words(text))

    return bool(speech.word_error_rate(us(said), us(heard)) <= 0.35)


class Storyteller:
    """A chat model that tells long, never repeated sentences, one word at a time."""

    def __init__(self) -> None:
        self.calls = 0

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        """Three sentences of 22 random words each (never cut at the token limit)."""
        self.calls += 1
        rng = random.Random(self.calls)
        sentences = [" ".join(rng.choice(VOCABULARY) for _ in range(22)).capitalize() + "." for _ in range(3)]
        for word in " ".join(sentences).split(" "):
            if cancel.is_set():
                return False
            time.sleep(0.02)
            yield word + " "
        return False

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """About a token per word."""
        return sum(len(m.content.split()) for m in messages)


class _OnMessage(logging.Handler):
    """Sets `event` when a log line containing `text` is emitted."""

    def __init__(self, text: str, event: threading.Event) -> None:
        super().__init__(logging.INFO)
        self._text, self._event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if self._text in record.getMessage():
            self._event.set()


class LiveRun:
    """The live runtime in a thread, with its finished turns collected."""

    def __init__(self, settings: MachineSettings, memory_settings: MemoryStoreSettings, parts: Parts) -> None:
        """Starts the runtime and returns once it captures (a question played before would be lost)."""
        self.turns: list[TurnRecord] = []
        self.stop = threading.Event()
        capturing = threading.Event()
        watch = _OnMessage("capturing from", capturing)
        capture_log = logging.getLogger("machine.audio.capture")
        capture_log.addHandler(watch)
        capture_log.setLevel(logging.INFO)
        self._thread = threading.Thread(
            target=lambda: run_live(settings, memory_settings, self.stop, self.turns.append, parts=parts),
            daemon=True,
        )
        self._thread.start()
        try:
            deadline = time.monotonic() + 180
            while not capturing.wait(0.1):
                if time.monotonic() > deadline or not self._thread.is_alive():
                    raise RuntimeError("the runtime never started capturing")
        finally:
            capture_log.removeHandler(watch)
        time.sleep(0.5)

    def wait_for_turns(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.turns) < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"only {len(self.turns)} of {count} turns")
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)


def wav(folder: Path, name: str, voice: PiperSynthesizer, text: str) -> Path:
    path = folder / f"{name}.wav"
    audio = np.concatenate([c.samples for c in voice.synthesize(text)])
    write_wav(path, to_mono_16k(audio, voice.sample_rate), SAMPLE_RATE)
    return path


def barge_in_tries(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, tries: int, scratch: Path
) -> list[dict[str, object]]:
    voice = PiperSynthesizer(settings.synthesizer)
    question = wav(scratch, "question", voice, QUESTION)
    storyteller = Storyteller()
    parts = Parts(chat_model=storyteller)
    results: list[dict[str, object]] = []
    with pulse.null_sinks("user", "bot") as sinks:
        audio = settings.audio.model_copy(
            update={
                "input_device": f"pulse:{sinks['user']}.monitor",
                "output_device": f"pulse:{sinks['bot']}",
                "barge_in": True,
            }
        )
        checks = settings.reply_checks.model_copy(update={"max_sentence_chars": 400})
        live = settings.model_copy(update={"audio": audio, "reply_checks": checks})
        bot = LiveRun(live, memory_settings, parts)
        bot_level = pulse.LevelMeter(f"{sinks['bot']}.monitor")
        user_level = pulse.LevelMeter(f"{sinks['user']}.monitor")
        try:
            for index in range(tries):
                said = INTERRUPTIONS[index % len(INTERRUPTIONS)]
                interruption = wav(scratch, f"interruption-{index}", voice, said)
                before = len(bot.turns)
                pulse.play(sinks["user"], question)
                bot_level.wait(lambda: bot_level.loud_for(0.3), timeout=120)
                time.sleep(1.0)  # well into the reply
                asked = time.monotonic()
                pulse.play(sinks["user"], interruption)
                bot.wait_for_turns(before + 2, timeout=120)
                onset = next(t for t, level in user_level.levels if t >= asked and level > -45)
                after = [(t, level) for t, level in bot_level.levels if t >= onset]
                stop = next(
                    (
                        t
                        for j, (t, _) in enumerate(after)
                        if len(after[j : j + 15]) == 15 and all(level < -60 for _, level in after[j : j + 15])
                    ),
                    None,
                )
                first, second = bot.turns[before], bot.turns[before + 1]
                results.append(
                    {
                        "try": index + 1,
                        "stop_ms": None if stop is None else round((stop - onset) * 1000),
                        "outcome": first.outcome,
                        "said": said,
                        "heard": second.transcript,
                        "answered": answered(said, second.transcript),
                    }
                )
                bot_level.wait(lambda: bot_level.quiet_for(2.0), timeout=120)
        finally:
            bot_level.close()
            user_level.close()
            bot.close()
    return results


def echo_loopback(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, minutes: float, scratch: Path
) -> dict[str, object]:
    voice = PiperSynthesizer(settings.synthesizer)
    question = wav(scratch, "echo-question", voice, "Hello Celeste, do you like music?")
    with (
        pulse.null_sinks("user", "bot") as sinks,
        pulse.loopback(f"{sinks['bot']}.monitor", sinks["user"], 1000),
    ):
        audio = settings.audio.model_copy(
            update={
                "input_device": f"pulse:{sinks['user']}.monitor",
                "output_device": f"pulse:{sinks['bot']}",
            }
        )
        bot = LiveRun(settings.model_copy(update={"audio": audio}), memory_settings, Parts())
        asked = 0
        try:
            end = time.monotonic() + minutes * 60
            while time.monotonic() < end:
                pulse.play(sinks["user"], question)
                asked += 1
                bot.wait_for_turns(asked, timeout=120)
                time.sleep(max(0.0, min(20.0, end - time.monotonic())))
        finally:
            bot.close()
    own_voice = [t.transcript for t in bot.turns if "music" not in speech.words(t.transcript)]
    return {
        "barge_in": settings.audio.barge_in,
        "minutes": minutes,
        "asked": asked,
        "turns": len(bot.turns),
        "answered_itself": len(own_voice),
        "stopped_by_its_own_echo": sum(1 for t in bot.turns if t.outcome == "interrupted"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--loopback-minutes", type=float, default=2.0)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "barge_in.json")
    parser.add_argument("--part", choices=("echo", "barge-in"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part is None:  # each part in a process of its own, as a user runs one bot per process
        for name in ("echo", "barge-in"):
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--part", name], check=True)
        return report(args.output, load_settings(args.config).audio.barge_in_ms + 150)
    pulse.ensure_server()
    settings = load_settings(args.config)
    scratch = args.output.parent / f"scratch-{args.part}"
    shutil.rmtree(scratch, ignore_errors=True)  # a killed run's memory would make every reply a repeat
    scratch.mkdir(parents=True)
    memory_settings = load_memory_settings(args.config).model_copy(update={"path": scratch / "memory"})
    try:
        if args.part == "echo":
            part: object = echo_loopback(settings, memory_settings, args.loopback_minutes, scratch)
        else:
            part = barge_in_tries(settings, memory_settings, args.tries, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    args.output.with_suffix(f".{args.part}.json").write_text(json.dumps(part, indent=2), encoding="utf-8")
    return 0


def report(output: Path, goal_ms: int) -> int:
    """Print the table of both parts and write the result."""
    echo = json.loads(output.with_suffix(".echo.json").read_text(encoding="utf-8"))
    tries = json.loads(output.with_suffix(".barge-in.json").read_text(encoding="utf-8"))
    output.with_suffix(".echo.json").unlink()
    output.with_suffix(".barge-in.json").unlink()
    print(f"{'try':>3}  {'stop ms':>7}  {'outcome':<12} {'answered':<8} heard")
    for row in tries:
        stop, outcome, answered = str(row["stop_ms"]), str(row["outcome"]), str(row["answered"])
        print(f"{row['try']:>3}  {stop:>7}  {outcome:<12} {answered:<8} {row['heard']}")
    good = sum(
        1
        for row in tries
        if row["outcome"] == "interrupted"
        and row["answered"]
        and row["stop_ms"] is not None
        and int(str(row["stop_ms"])) <= goal_ms
    )
    print(f"within {goal_ms} ms and answered: {good} of {len(tries)}")
    print(f"1 s echo loopback, {'barge-in on' if echo['barge_in'] else 'half-duplex'}: {echo}")
    result = {
        "benchmark": "barge_in",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "goal_ms": goal_ms,
        "good_tries": good,
        "tries": tries,
        "echo_loopback": echo,
    }
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
