"""Speech-synthesis benchmark: each backend on a fixed set of short replies.

    .venv/bin/python bench/speech_synthesis.py [--config FILE]
        [--coqui-model NAME | --coqui-model-path FILE --coqui-config-path FILE]
        [--coqui-speaker NAME] [--coqui-language CODE]

For Piper (the configured voice, by default the bundled en_US-joe-medium) and Coqui, on the same replies of
one to three sentences:

- time to first audio: from the synthesize() call until its first chunk (the first sentence) is ready;
- real-time factor: synthesis time / duration of the audio made (below 1 = faster than real time);
- the largest gap between sentences when each reply is played through the Speaker (which synthesises the
  next sentences while one plays) into a sink that plays in real time.

No Coqui model loads offline, so without the --coqui-* flags Coqui runs a tiny VITS with random weights
(tests/coqui_tiny.py): its audio is noise, and its figures measure the backend's pipeline (coqui-tts's
text processing, sentence splitting, a small model's forward pass) - not a real voice. Name a real model
(downloaded by coqui-tts; needs internet) with --coqui-model, e.g. tts_models/en/ljspeech/vits.

Each backend synthesises one warm-up reply first (not counted). Prints a table and writes
bench/results/speech_synthesis.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import from_tests
from turn_latency import machine_description, write_result

from machine.backends.coqui_synthesizer import CoquiSynthesizer
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.ports import Synthesizer
from machine.settings import BUNDLED, CoquiSettings, load_settings
from machine.speak.speaker import Speaker

coqui_tiny = from_tests.load("coqui_tiny")
realtime_sink = from_tests.load("realtime_sink")

REPLIES: tuple[tuple[str, ...], ...] = (
    ("Hey there!",),
    ("I'm doing great, thanks for asking.", "How about you?"),
    ("My favorite color is a deep ocean blue.",),
    (
        "I love music, especially lo-fi beats.",
        "They help me relax after a long day.",
        "Do you have a favorite?",
    ),
    ("Sure, here's one.", "Why did the scarecrow win an award?", "Because he was outstanding in his field!"),
    ("I mostly hang out in cozy worlds with a fireplace.", "It's nice to chat there."),
    ("Good night!", "See you tomorrow."),
    ("That sounds like a lot of fun.", "Tell me more about it when you can."),
)
WARM_UP = "Hello, this is a warm-up sentence."
TINY_LABEL = "coqui (tiny VITS, random weights)"
TINY_NOTE = "coqui tiny VITS: random weights, so its audio is noise; its figures measure the pipeline only"


@dataclass(frozen=True)
class Figures:
    """One backend's results over REPLIES (seconds, rounded)."""

    sample_rate: int
    sentences: int
    audio_s: float
    first_audio_median_s: float
    first_audio_max_s: float
    real_time_factor: float
    max_gap_s: float


def measure(synthesizer: Synthesizer) -> Figures:
    """Time to first audio, real-time factor and the largest inter-sentence gap over REPLIES."""
    list(synthesizer.synthesize(WARM_UP))
    first_audio: list[float] = []
    gaps: list[float] = []
    synthesis_s = audio_s = 0.0
    for reply in REPLIES:
        started = time.perf_counter()
        chunks = synthesizer.synthesize(" ".join(reply))
        first = next(chunks)
        first_audio.append(time.perf_counter() - started)
        rest = list(chunks)
        synthesis_s += time.perf_counter() - started
        audio_s += sum(len(chunk.samples) / chunk.sample_rate for chunk in [first, *rest])
        sink = realtime_sink.RealTimeSink()
        Speaker(synthesizer, sink).speak(iter(reply), threading.Event())
        gaps.extend(sink.gaps_s())
    return Figures(
        sample_rate=synthesizer.sample_rate,
        sentences=sum(len(reply) for reply in REPLIES),
        audio_s=round(audio_s, 2),
        first_audio_median_s=round(statistics.median(first_audio), 4),
        first_audio_max_s=round(max(first_audio), 4),
        real_time_factor=round(synthesis_s / audio_s, 4),
        max_gap_s=round(max(gaps), 4),
    )


def coqui_settings(args: argparse.Namespace, scratch: Path) -> tuple[CoquiSettings, str]:
    """The Coqui model the flags name, else the tiny random-weight VITS built in `scratch`; with a label."""
    if args.coqui_model or args.coqui_model_path:
        settings = CoquiSettings(
            model=args.coqui_model,
            model_path=args.coqui_model_path,
            config_path=args.coqui_config_path,
            speaker=args.coqui_speaker,
            language=args.coqui_language,
        )
        return settings, f"coqui ({settings.model or settings.model_path})"
    model_path, config_path = coqui_tiny.build_tiny_vits(scratch, sample_rate=22_050)
    return CoquiSettings(model_path=model_path, config_path=config_path), TINY_LABEL


def table(results: dict[str, Figures]) -> str:
    """The figures as a plain-text table."""
    lines = [f"{'backend':<36} {'first audio median ms':>21} {'max ms':>7} {'RTF':>6} {'max gap ms':>10}"]
    for name, f in results.items():
        lines.append(
            f"{name:<36} {1000 * f.first_audio_median_s:>21.0f} {1000 * f.first_audio_max_s:>7.0f} "
            f"{f.real_time_factor:>6.3f} {1000 * f.max_gap_s:>10.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path)
    parser.add_argument("--coqui-model", help="a Coqui model name (downloaded by coqui-tts)")
    parser.add_argument("--coqui-model-path", type=Path, help="a local Coqui checkpoint (or model folder)")
    parser.add_argument("--coqui-config-path", type=Path, help="the config.json of --coqui-model-path")
    parser.add_argument("--coqui-speaker", help="speaker name, for a multi-speaker model")
    parser.add_argument("--coqui-language", help="language code, for a multilingual model")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "speech_synthesis.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(args.config)
    load_average = os.getloadavg()[0]  # other work on the machine slows every figure
    results: dict[str, Figures] = {}
    voice = settings.synthesizer.voice
    results[f"piper ({'en_US-joe-medium' if voice == BUNDLED else voice})"] = measure(
        PiperSynthesizer(settings.synthesizer)
    )
    with tempfile.TemporaryDirectory() as scratch:
        coqui, label = coqui_settings(args, Path(scratch))
        results[label] = measure(CoquiSynthesizer(coqui))
    notes = [TINY_NOTE] if label == TINY_LABEL else []
    print("\n" + "\n".join([table(results), *notes]))
    result = {
        "benchmark": "speech_synthesis",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "load_average_1m_at_start": round(load_average, 2),
        "replies": len(REPLIES),
        "backends": {name: asdict(figures) for name, figures in results.items()},
        "notes": notes,
    }
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
