"""Live-audio benchmark: processing cost per second of audio, and a long live run on PulseAudio.

    .venv/bin/python bench/live_audio.py [--minutes 10] [--speech-every 30]

1. CPU time of levels + VAD + endpointing (and with the RNNoise denoiser) per second of audio, on a
   minute of speech and noise: the goal is under 3 % of one core without the denoiser.
2. A live run of the whole runtime (real models) on PulseAudio null sinks for --minutes, with a spoken
   question (ordinary small talk, a different one each time) played into its input every --speech-every
   seconds: blocks dropped between capture and processing (goal 0), resident memory at the start and the
   end (goal: flat), and the replies' audio: underruns (goal 0) and the share of the synthesised audio
   delivered to the device (goal 100 %), per turn and in all.

Prints a table and writes bench/results/live_audio.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import from_tests
import numpy as np
import psutil
from live_bot import live_on_null_sinks
from turn_latency import machine_description

from machine.audio.files import to_mono_16k, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.backends.rnnoise_denoiser import RnnoiseDenoiser
from machine.backends.silero_vad import SileroVoiceActivity
from machine.listen.endpointing import Endpointer
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk
from machine.process.malloc_arenas import tune_malloc
from machine.settings import MachineSettings, load_settings
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings

pulse = from_tests.load("pulse")  # PulseAudio null sinks
ORDINARY_QUESTIONS = from_tests.load("ordinary_questions").ORDINARY_QUESTIONS


def speech_over_noise(settings: MachineSettings, seconds: float) -> np.ndarray:
    """Speech with pauses over background noise, `seconds` long."""
    voice = PiperSynthesizer(settings.synthesizer)
    speech = to_mono_16k(
        np.concatenate([c.samples for c in voice.synthesize("Hello there, how is everyone doing tonight?")]),
        voice.sample_rate,
    )
    rng = np.random.default_rng(0)
    signal = (0.003 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    for start in range(0, len(signal) - len(speech), 5 * SAMPLE_RATE):
        signal[start : start + len(speech)] += speech
    return signal


def processing_cost(settings: MachineSettings, signal: np.ndarray, denoise: bool) -> float:
    """Percent of one core spent per second of audio."""
    endpointer = Endpointer(SileroVoiceActivity(), settings.endpointing)
    denoiser = RnnoiseDenoiser() if denoise else None
    chunks = signal[: len(signal) // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    started = time.thread_time()
    for samples in chunks:
        cleaned = denoiser(samples) if denoiser is not None else samples
        endpointer.push(AudioChunk(cleaned, 0.0))
    return 100 * (time.thread_time() - started) / (len(chunks) * CHUNK_SAMPLES / SAMPLE_RATE)


def live_run(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    minutes: float,
    speech_every: float,
    scratch: Path,
) -> dict[str, object]:
    """The whole runtime on null sinks for `minutes`, a question every `speech_every` seconds."""
    question = scratch / "question.wav"
    write_wav(question, speech_over_noise(settings, 4.0)[: 4 * SAMPLE_RATE], SAMPLE_RATE)
    # the same question every time makes the bot repeat itself and give up in silence (a strike): ask
    # different ones, so there are replies to play
    voice = PiperSynthesizer(settings.synthesizer)
    questions = []
    for index, text in enumerate(ORDINARY_QUESTIONS):
        path = scratch / f"question-{index:02d}.wav"
        audio = np.concatenate([c.samples for c in voice.synthesize(text)])
        write_wav(path, to_mono_16k(audio, voice.sample_rate), SAMPLE_RATE)
        questions.append(path)
    process = psutil.Process()
    rss_mb: list[float] = []
    with live_on_null_sinks(settings, memory_settings) as live:
        sinks, turns = live.sinks, live.turns
        time.sleep(20)  # models load
        pulse.play(sinks["user"], question)
        while not turns:  # memory is measured from the first finished turn on, with every model warm
            time.sleep(0.2)
        end = time.monotonic() + minutes * 60
        next_sample = 0.0
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                rss_mb.append(round(process.memory_info().rss / 2**20, 1))
                next_sample = time.monotonic() + 60
            pulse.play(sinks["user"], questions[0])
            questions.append(questions.pop(0))
            time.sleep(max(0.0, min(speech_every, end - time.monotonic())))
        rss_mb.append(round(process.memory_info().rss / 2**20, 1))
    run = live.result[0]
    spoken = [t for t in run.turns if t.playback.synthesised_s > 0]
    synthesised = sum(t.playback.synthesised_s for t in spoken)
    delivered = sum(t.playback.delivered_s for t in spoken)
    return {
        "minutes": minutes,
        "turns": len(run.turns),
        "turns_spoken": len(spoken),
        "underruns": sum(t.playback.underruns for t in spoken),
        "turns_with_underruns": sum(t.playback.underruns > 0 for t in spoken),
        "synthesised_s": round(synthesised, 1),
        "delivered_pct": round(100 * delivered / synthesised, 2) if synthesised else None,
        "per_turn": [{"turn": t.turn, "outcome": t.outcome, **asdict(t.playback)} for t in run.turns],
        "capture_blocks_dropped": run.capture_blocks_dropped,
        "chunks_dropped": run.chunks_dropped,
        "rss_start_mb": rss_mb[0],
        "rss_end_mb": rss_mb[-1],
        "rss_per_minute_mb": rss_mb,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speech-every", type=float, default=30.0)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "live_audio.json")
    args = parser.parse_args()
    tune_malloc()  # as `python -m machine` does
    settings = load_settings(args.config)
    signal = speech_over_noise(settings, 60.0)
    cost = {"levels_vad_pct_core": processing_cost(settings, signal, denoise=False)}
    cost["levels_vad_rnnoise_pct_core"] = processing_cost(settings, signal, denoise=True)
    scratch = Path(args.output).parent / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)  # a killed run's memory would make every reply a repeat
    scratch.mkdir(parents=True)
    try:
        memory_settings = load_memory_settings(args.config).model_copy(update={"path": scratch / "memory"})
        run = live_run(settings, memory_settings, args.minutes, args.speech_every, scratch)
    finally:
        shutil.rmtree(scratch)
    rows = [*cost.items(), *((key, value) for key, value in run.items() if key != "per_turn")]
    print("\n".join(f"{key:<32}{value!s:>10}" for key, value in rows))
    result: dict[str, object] = {
        "benchmark": "live_audio",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
    }
    result.update(cost)
    result.update(run)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
