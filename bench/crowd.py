"""Crowd benchmark: who is talking, and whether the bot is addressed, on spoken multi-voice scenes.

    .venv/bin/python bench/crowd.py [--threshold 0.75] [--policy addressed]

The scenes of bench/data/crowd.json (six voices: Piper and espeak-ng variants; players talking to each
other and to the bot) are synthesised, transcribed by the bundled whisper and heard one utterance at a
time, each scene a session of its own. Reported:

- speaker attribution: the share of utterances whose speaker number maps to the true voice (each speaker
  number mapped to the voice it was most often given to, one voice per number), and a sweep of the
  threshold;
- with the reply policy (`addressed` by default): replies to cross-talk (lines not meant for the bot that
  the policy would answer) and missed addressed turns (lines meant for it that it would not); the bot is
  taken to answer each addressed line 3 s after it ends;
- the cost of identifying a speaker per utterance, median and p95 ms: alone (embedding and matching, one
  after the other), and what it adds to a turn as the runtime runs it (the voice embedded beside the
  transcription: the wait after the transcript is ready, plus matching).

Prints a table and writes bench/results/crowd.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from turn_latency import machine_description

from machine.audio.files import read_wav, to_mono_16k
from machine.backends.bundled_models import voice_encoder_weights
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.backends.voice_encoder import VoiceEncoder
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.crowd.policy import ReplyPolicy
from machine.crowd.speakers import SpeakerTracker
from machine.ports import SAMPLE_RATE
from machine.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "data" / "crowd.json"
RESULTS = ROOT / "bench" / "results" / "crowd.json"
GAP_S = 1.0
"""Silence between two lines."""
REPLY_S = 3.0
"""How long the bot is taken to speak after an addressed line."""


@dataclass
class Line:
    scene: int
    who: str
    text: str
    to_bot: bool
    speech: np.ndarray
    transcript: str = ""
    embedding: np.ndarray | None = None
    embed_ms: float = 0.0
    added_ms: float = 0.0


def synthesise(voices: dict[str, dict[str, object]], scenes: list[list[dict[str, object]]]) -> list[Line]:
    settings = load_settings()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing: run `make system-packages` (apt-get install espeak-ng)")
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        for scene, script in enumerate(scenes):
            for line in script:
                voice = voices[str(line["who"])]
                text = str(line["text"])
                if voice["engine"] == "piper":
                    piper = PiperSynthesizer(
                        settings.synthesizer.model_copy(update={"length_scale": voice["length_scale"]})
                    )
                    audio = np.concatenate([chunk.samples for chunk in piper.synthesize(text)])
                    speech = to_mono_16k(audio, piper.sample_rate)
                else:
                    path = Path(folder) / "line.wav"
                    command = ["espeak-ng", "-v", str(voice["voice"]), "-p", str(voice["pitch"])]
                    command += ["-s", str(voice["words_per_minute"]), "-w", str(path), text]
                    subprocess.run(command, check=True)
                    speech = read_wav(path)
                lines.append(Line(scene, str(line["who"]), text, bool(line["to_bot"]), speech))
    return lines


def attribution(lines: list[Line], numbers: list[int]) -> float:
    """The share of lines whose speaker number maps to their voice (one-to-one, greedy, per scene)."""
    correct = 0
    for scene in {line.scene for line in lines}:
        pairs = Counter(
            (number, line.who) for line, number in zip(lines, numbers, strict=True) if line.scene == scene
        )
        taken_numbers: set[int] = set()
        taken_voices: set[str] = set()
        for (number, who), count in pairs.most_common():
            if number not in taken_numbers and who not in taken_voices:
                taken_numbers.add(number)
                taken_voices.add(who)
                correct += count
    return correct / len(lines)


def identify(lines: list[Line], threshold: float, bot_name: str) -> list[int]:
    """Speaker numbers per line, each scene a fresh session."""
    numbers = []
    tracker = SpeakerTracker(threshold, bot_name)
    scene = -1
    for line in lines:
        if line.scene != scene:
            tracker.forget()
            scene = line.scene
        assert line.embedding is not None
        numbers.append(tracker.identify(line.embedding, line.transcript).number)
    return numbers


def judge(
    lines: list[Line], numbers: list[int], policy_name: str
) -> tuple[int, int, list[dict[str, object]]]:
    """The reply policy over the scenes: replies to cross-talk, missed addressed lines, every decision."""
    settings = load_settings()
    policy = ReplyPolicy(settings.reply_policy.model_copy(update={"policy": policy_name}), settings.bot_name)
    now, scene = 0.0, -1
    answered_cross_talk = missed = 0
    decisions: list[dict[str, object]] = []
    for line, number in zip(lines, numbers, strict=True):
        if line.scene != scene:
            policy.forget()
            scene = line.scene
        now += len(line.speech) / SAMPLE_RATE
        speaker = f"speaker {number}"
        addressed = policy.addressed(line.transcript, speaker, now)
        if addressed:
            now += REPLY_S
            policy.answered(speaker, now)
        now += GAP_S
        answered_cross_talk += addressed and not line.to_bot
        missed += line.to_bot and not addressed
        decisions.append(
            {
                "scene": line.scene,
                "who": line.who,
                "speaker": number,
                "heard": line.transcript,
                "to_bot": line.to_bot,
                "answered": addressed,
            }
        )
    return answered_cross_talk, missed, decisions


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threshold", type=float, default=None, help="default: machine.speakers.threshold")
    parser.add_argument("--policy", default="addressed", choices=("addressed", "main_speaker"))
    args = parser.parse_args()
    settings = load_settings()
    threshold = args.threshold if args.threshold is not None else settings.speakers.threshold
    data = json.loads(SCRIPT.read_text(encoding="utf-8"))
    lines = synthesise(data["voices"], data["scenes"])
    transcriber = WhisperxTranscriber(settings.transcriber, settings.bot_name)
    encoder = VoiceEncoder(voice_encoder_weights())
    encoder.embed(lines[0].speech)  # warm-up
    with ThreadPoolExecutor(max_workers=1) as beside:
        for line in lines:
            voice = beside.submit(encoder.embed, line.speech)  # as the runtime does it
            line.transcript = transcriber.transcribe(line.speech).text
            ready = time.perf_counter()
            voice.result()
            line.added_ms = (time.perf_counter() - ready) * 1000
            started = time.perf_counter()
            line.embedding = encoder.embed(line.speech)
            line.embed_ms = (time.perf_counter() - started) * 1000

    sweep = {
        round(float(t), 2): attribution(lines, identify(lines, float(t), settings.bot_name))
        for t in np.arange(0.60, 0.91, 0.025)
    }
    match_started = time.perf_counter()
    numbers = identify(lines, threshold, settings.bot_name)
    match_ms = (time.perf_counter() - match_started) * 1000 / len(lines)
    accuracy = attribution(lines, numbers)

    answered_cross_talk, missed, decisions = judge(lines, numbers, args.policy)
    cross_talk = sum(not line.to_bot for line in lines)
    to_bot = sum(line.to_bot for line in lines)
    costs = sorted(line.embed_ms + match_ms for line in lines)
    p95 = costs[min(len(costs) - 1, round(0.95 * len(costs)))]
    added = sorted(line.added_ms + match_ms for line in lines)
    added_p95 = added[min(len(added) - 1, round(0.95 * len(added)))]

    print(f"{len(lines)} utterances, {len(data['voices'])} voices, {len(data['scenes'])} scenes")
    print(f"{'threshold':>9}  attribution")
    for value, share in sweep.items():
        print(f"{value:>9.3f}  {share:6.1%}{'  <- used' if abs(value - threshold) < 1e-6 else ''}")
    print(f"speaker attribution at {threshold}: {accuracy:.1%}")
    print(
        f"policy {args.policy}: replies to cross-talk {answered_cross_talk}/{cross_talk} "
        f"({answered_cross_talk / cross_talk:.1%}), addressed turns missed {missed}/{to_bot} "
        f"({missed / to_bot:.1%})"
    )
    print(f"identification cost per utterance: median {statistics.median(costs):.1f} ms, p95 {p95:.1f} ms")
    print(
        f"added to a turn (embedded beside the transcription): median {statistics.median(added):.1f} ms, "
        f"p95 {added_p95:.1f} ms"
    )
    result = {
        "benchmark": "crowd",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "utterances": len(lines),
        "voices": len(data["voices"]),
        "threshold": threshold,
        "attribution": round(accuracy, 4),
        "threshold_sweep": {str(k): round(v, 4) for k, v in sweep.items()},
        "policy": args.policy,
        "replies_to_cross_talk": {"count": answered_cross_talk, "of": cross_talk},
        "missed_addressed": {"count": missed, "of": to_bot},
        "identify_ms": {"median": round(statistics.median(costs), 1), "p95": round(p95, 1)},
        "added_to_turn_ms": {"median": round(statistics.median(added), 1), "p95": round(added_p95, 1)},
        "decisions": decisions,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
