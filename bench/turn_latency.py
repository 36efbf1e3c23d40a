"""Turn-latency benchmark: N spoken questions through the runtime in real time, on the configured models.

    .venv/bin/python bench/turn_latency.py [--questions N] [--config FILE] [--fast]

Prints the median and p95 of every stage and of voice-to-voice latency (first audio out minus last
voiced sample in), and writes them with the machine's description to bench/results/turn_latency.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from machine.process.malloc_arenas import tune_malloc
from machine.runs.demo import synthesise_questions
from machine.runs.recorded import run_recorded
from machine.settings import load_settings
from machine.turn_metrics import latency_table, summarise
from memory_store import load_settings as load_memory_settings

QUESTIONS = (
    "Hi Celeste, how are you doing today?",
    "What is your favorite color?",
    "Do you like music?",
    "Where do you like to hang out in VR Chat?",
    "Can you tell me a joke?",
    "What did you do this weekend?",
    "Do you have any pets?",
    "What is the best food in the world?",
    "Do you like the rain?",
    "What games do you play?",
    "Can you recommend a good book?",
    "What is the coolest world you have visited?",
    "Do you prefer cats or dogs?",
    "What kind of avatar do you have?",
    "Have you ever been to a concert?",
    "What makes you happy?",
    "Can you sing me a song?",
    "Do you like to dance?",
    "What is your favorite season?",
    "Good night, see you tomorrow!",
)


def machine_description() -> dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "gpu": "none"}


def write_result(path: Path, result: dict[str, object]) -> None:
    """Write a benchmark's result as indented JSON (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten to {path}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=20, help=f"how many questions (1-{len(QUESTIONS)})")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--fast", action="store_true", help="no real-time pacing (stage times only)")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "turn_latency.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tune_malloc()  # as `python -m machine` does
    settings = load_settings(args.config)
    memory_settings = load_memory_settings(args.config)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        synthesise_questions(settings, folder / "questions", QUESTIONS[: args.questions])
        started = time.perf_counter()
        records = run_recorded(
            settings,
            memory_settings,
            folder / "questions",
            folder / "replies",
            realtime=not args.fast,
            fresh_session=True,
        )
        elapsed = time.perf_counter() - started
    print("\n" + latency_table(records))
    result = {
        "benchmark": "turn_latency",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "realtime": not args.fast,
        "questions": len(records),
        "replied": sum(r.outcome == "replied" for r in records),
        "wall_s": round(elapsed, 1),
        "stages_s": {
            name: {key: round(value, 4) for key, value in values.items()}
            for name, values in summarise(records).items()
        },
    }
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
