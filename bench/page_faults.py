"""Page-fault benchmark: one utterance transcribed again and again, as the runtime does it, under each of
glibc malloc's settings.

    .venv/bin/python bench/page_faults.py [--calls 15] [--output PATH]

Each setting runs in a fresh process (malloc is set up before the models load): `default` (glibc's own),
`tuned` (what `python -m machine` sets up: `machine.process.malloc_arenas.tune_malloc`), and each of
them with the free-memory trim the runtime runs after every turn (`malloc_trim(0)`) before every call.
The transcription runs on a worker thread, as the runtime's jobs do, on a held-out sentence spoken by the
bundled Piper voice; three unmeasured calls come first. Per setting: the median time of a transcription
and the minor page faults it took (Linux's count for the process). Prints a table and writes
bench/results/page_faults.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from turn_latency import machine_description, write_result

from machine.audio.files import to_mono_16k
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.process.malloc_arenas import FreeMemoryReturner, tune_malloc
from machine.settings import load_settings

SETTINGS = ("default", "default+trim", "tuned", "tuned+trim")
SENTENCE = "I'm a huge Formula One fan, Ferrari all the way."


def minor_faults() -> int:
    """The minor page faults this process has taken (Linux)."""
    with open("/proc/self/stat", encoding="ascii") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[7])


def measure(setting: str, calls: int) -> dict[str, float]:
    """Transcribe `SENTENCE` `calls` times under `setting` (in this process: call it in a fresh one)."""
    if setting.startswith("tuned"):
        tune_malloc()  # before the models load, as `python -m machine` does
    settings = load_settings(None)
    voice = PiperSynthesizer(settings.synthesizer)
    chunks = [chunk.samples for chunk in voice.synthesize(SENTENCE)]
    audio = to_mono_16k(np.concatenate(chunks), voice.sample_rate)
    transcriber = WhisperxTranscriber(settings.transcriber, settings.bot_name)
    returner = FreeMemoryReturner()
    times, faults = [], []
    with ThreadPoolExecutor(1, thread_name_prefix="job") as jobs:
        for call in range(calls + 3):
            if setting.endswith("+trim"):
                returner.trim()
            before, started = minor_faults(), time.perf_counter()
            jobs.submit(transcriber.transcribe, audio).result()
            if call >= 3:
                times.append(time.perf_counter() - started)
                faults.append(minor_faults() - before)
    return {"median_ms": round(1000 * statistics.median(times)), "faults": statistics.median(faults)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "page_faults.json")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # one setting, in a child
    args = parser.parse_args()
    if args.setting is not None:
        print(json.dumps(measure(args.setting, args.calls)))
        return 0
    rows = {}
    for setting in SETTINGS:
        child = subprocess.run(
            [sys.executable, __file__, "--setting", setting, "--calls", str(args.calls)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[setting] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{'malloc':<14}{'transcription ms':>18}{'page faults':>13}")
    for setting, row in rows.items():
        print(f"{setting:<14}{row['median_ms']:>18}{row['faults']:>13.0f}")
    write_result(
        args.output,
        {
            "benchmark": "page_faults",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "calls": args.calls,
            "sentence": SENTENCE,
            "settings": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
