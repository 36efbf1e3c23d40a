"""Calibration of the graded end of turn: how sure the turn-end model (Smart Turn) is, on speech whose
turn is over and on speech that only paused.

    .venv/bin/python bench/turn_end_calibration.py [--output FILE]

The labelled set (bench/data/turn_ends.json) holds finished questions and statements and unfinished ones
(stopped mid-clause, on a filler, in a list, on a trailing "and"), spoken by Piper and four espeak-ng
voices, plus the 13 lines of the real phone call pyannote.audio ships (human speech; each line ends where
the speaker's turn does). Each is given to the model as the endpointer does when a pause begins: the
pre-roll, the speech, then `pause_ms` and one chunk of silence, under a faint noise floor.

For each threshold it counts the unfinished turns the model calls finished at or above it (each would be
cut off after the silence that threshold buys) and the finished turns it is that sure of (each ends
sooner). `sure_threshold` is the lowest with no unfinished turn above it, on every voice. Prints a table
and writes bench/results/turn_end_calibration.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from transcription_edges import Voices, real_call
from turn_latency import machine_description, write_result

from machine.backends.smart_turn import SmartTurn
from machine.ports import CHUNK_MS, SAMPLE_RATE, FloatAudio
from machine.settings import EndpointingSettings, load_settings

DATA = Path(__file__).parent / "data" / "turn_ends.json"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)
NOISE_DBFS = -60.0


def as_heard_at_a_pause(speech: FloatAudio, settings: EndpointingSettings, seed: int) -> FloatAudio:
    """What the endpointer hands the model when a pause begins: pre-roll, speech, pause and a chunk."""
    lead = np.zeros(int(settings.pre_roll_ms * SAMPLE_RATE / 1000), dtype=np.float32)
    tail = np.zeros(int((settings.pause_ms + CHUNK_MS) * SAMPLE_RATE / 1000), dtype=np.float32)
    audio = np.concatenate([lead, speech, tail])
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return (audio + noise * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "turn_end_calibration.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    spec = json.loads(DATA.read_text(encoding="utf-8"))
    model = SmartTurn()
    rows: list[dict[str, object]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        voices = Voices(settings, spec["voices"], Path(scratch))
        for voice in spec["voices"]:
            for n, item in enumerate(spec["items"]):
                speech = voices.say(voice["name"], item["text"])
                audio = as_heard_at_a_pause(speech, settings.endpointing, seed=n)
                rows.append(
                    {
                        "voice": voice["name"],
                        "text": item["text"],
                        "kind": item["kind"],
                        "finished": item["finished"],
                        "probability": round(model.probability(audio), 4),
                    }
                )
    for n, item in enumerate(i for i in real_call() if i.name.startswith("call/line")):
        audio = as_heard_at_a_pause(item.audio, settings.endpointing, seed=n)
        rows.append(
            {
                "voice": "human (pyannote call)",
                "text": item.reference,
                "kind": "real line",
                "finished": True,
                "probability": round(model.probability(audio), 4),
            }
        )
    unfinished = [r for r in rows if not r["finished"]]
    finished = [r for r in rows if r["finished"]]

    def at_least(group: list[dict[str, object]], threshold: float) -> int:
        return sum(1 for r in group if float(str(r["probability"])) >= threshold)

    table = [
        {
            "threshold": t,
            "unfinished_at_or_above": at_least(unfinished, t),
            "finished_at_or_above": at_least(finished, t),
            "human_finished_at_or_above": at_least([r for r in finished if r["kind"] == "real line"], t),
        }
        for t in THRESHOLDS
    ]
    safe = [row["threshold"] for row in table if row["unfinished_at_or_above"] == 0]
    highest_unfinished = max(unfinished, key=lambda r: float(str(r["probability"])))
    took = time.monotonic() - started
    print(f"{len(rows)} turns ({len(finished)} finished, {len(unfinished)} unfinished) in {took:.0f} s")
    print(f"{'threshold':>9}  {'unfinished >=':>13}  {'finished >=':>11}  {'human lines >=':>14}")
    humans = sum(1 for r in finished if r["kind"] == "real line")
    for row in table:
        print(
            f"{row['threshold']:>9}  {row['unfinished_at_or_above']:>6}/{len(unfinished):<6}  "
            f"{row['finished_at_or_above']:>4}/{len(finished):<6}  "
            f"{row['human_finished_at_or_above']:>7}/{humans}"
        )
    print(
        f"most sure unfinished: {highest_unfinished['probability']} {highest_unfinished['voice']}: "
        f"{highest_unfinished['text']!r}"
    )
    print(f"lowest threshold with no unfinished turn at or above it: {safe[0] if safe else 'none'}")
    write_result(
        args.output,
        {
            "machine": machine_description(),
            "command": "bench/turn_end_calibration.py",
            "thresholds": table,
            "lowest_safe_threshold": safe[0] if safe else None,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
