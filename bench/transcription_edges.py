"""Words whisper invents at a segment's edges: the transcriber and its guards on utterances with real edges.

    .venv/bin/python bench/transcription_edges.py [--config FILE] [--variants NAME,NAME] [--keep DIR]
        [--output FILE]

The set (bench/data/transcription_edges.json) is spoken by Piper (the configured voice) and several
espeak-ng voices and built the same way every run (seeded noise): each line gets edges like the endpointer's
segments have (leading and trailing silence of various lengths, low noise at -50..-40 dBFS, a breath-like
noise burst before or after the words, a "hmm"/"uh" filler before them); short words said once ("Hello?")
with long silent or noisy edges; and quick two-line exchanges by two voices as one segment. --keep writes
the WAVs and their references to DIR.

Every variant transcribes the whole set. Per variant: word error rate (fillers ignored), words inserted
before the first or after the last word said (edge insertions), segments with a hallucinated repeat (a word
or phrase written 3+ times in a row that was said fewer times), segments heard as nothing, and seconds per
segment. The variants are whisper's own guards (those the batched whisperx pipeline honours, and the others
through faster-whisper's sequential decoder on the same model), trimming to silero-vad's voiced bounds plus a
pad, the text-level repeat collapse, and an initial prompt with the conversation so far.

Prints a table and writes bench/results/transcription_edges.json (or --output).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from edge_measures import edge_insertions, hallucinated_repeat, plain_words, word_error_rate
from turn_latency import machine_description, write_result

from machine.app import build_synthesizer
from machine.audio.files import read_wav, to_mono_16k, write_wav
from machine.backends.silero_vad import SileroVoiceActivity
from machine.backends.transcript_edges import collapse_repeats, voice_span
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.ports import SAMPLE_RATE, FloatAudio
from machine.settings import MachineSettings, load_settings

DATA = Path(__file__).parent / "data" / "transcription_edges.json"
SPEECH_DBFS = -20.0
BREATH_DBFS = -32.0
PRE_ROLL_S = 0.32
"""The endpointer's default pre-roll (`endpointing.pre_roll_ms`)."""
TAIL_S = 0.5


@dataclasses.dataclass
class Item:
    name: str
    voice: str
    kind: str  # line | alone | exchange
    edge: str
    reference: str
    audio: FloatAudio


def db(value: float) -> float:
    return float(10 ** (value / 20))


def at_level(audio: FloatAudio, dbfs: float) -> FloatAudio:
    rms = float(np.sqrt(np.mean(np.square(audio)))) or 1.0
    return (audio * (db(dbfs) / rms)).astype(np.float32)


class Voices:
    """Each (voice, text) spoken once, as 16 kHz mono at a common speech level."""

    def __init__(self, settings: MachineSettings, voices: list[dict[str, Any]], scratch: Path) -> None:
        self._settings = settings
        self._voices = {str(v["name"]): v for v in voices}
        self._scratch = scratch
        self._piper: Any = None
        self._cache: dict[tuple[str, str], FloatAudio] = {}

    def say(self, voice: str, text: str) -> FloatAudio:
        key = (voice, text)
        if key not in self._cache:
            self._cache[key] = at_level(self._speak(self._voices[voice], text), SPEECH_DBFS)
        return self._cache[key]

    def _speak(self, voice: dict[str, Any], text: str) -> FloatAudio:
        if voice["engine"] == "espeak":
            wav = self._scratch / "espeak.wav"
            command = ["espeak-ng", "-v", str(voice["voice"]), "-s", str(voice["words_per_minute"])]
            subprocess.run([*command, "-w", str(wav), text], check=True)
            return trim_digital_silence(read_wav(wav))
        if self._piper is None:
            synthesizer = self._settings.synthesizer
            self._piper = build_synthesizer(
                synthesizer.model_copy(update={"length_scale": voice["length_scale"]})
            )
        audio = np.concatenate([chunk.samples for chunk in self._piper.synthesize(text)])
        return trim_digital_silence(to_mono_16k(audio, self._piper.sample_rate))


def trim_digital_silence(audio: FloatAudio) -> FloatAudio:
    """The synthesiser's own leading and trailing silence off, so the set's edges are the ones it adds."""
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def breath(rng: np.random.Generator) -> FloatAudio:
    """A breath-like burst: 0.3 s of low-passed noise with a rise and fall."""
    samples = int(0.3 * SAMPLE_RATE)
    noise = np.convolve(rng.standard_normal(samples + 15), np.ones(16) / 16, mode="valid")
    return at_level((noise * np.hanning(samples)).astype(np.float32), BREATH_DBFS)


def with_edges(
    speech: FloatAudio, edge: dict[str, Any], rng: np.random.Generator, filler: FloatAudio | None
) -> FloatAudio:
    lead = np.zeros(int(edge["lead_s"] * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(edge["tail_s"] * SAMPLE_RATE), dtype=np.float32)
    if edge.get("breath") == "lead":
        puff = breath(rng)
        lead[-len(puff) - int(0.15 * SAMPLE_RATE) : -int(0.15 * SAMPLE_RATE)] += puff
    if edge.get("breath") == "tail":
        puff = breath(rng)
        start = int(0.2 * SAMPLE_RATE)
        tail[start : start + len(puff)] += puff
    parts = [lead]
    if filler is not None:
        parts += [filler, np.zeros(int(0.25 * SAMPLE_RATE), dtype=np.float32)]
    audio = np.concatenate([*parts, speech, tail])
    if "noise_dbfs" in edge:
        audio = audio + rng.standard_normal(len(audio)).astype(np.float32) * db(float(edge["noise_dbfs"]))
    return audio.astype(np.float32)


def build_set(settings: MachineSettings, scratch: Path) -> list[Item]:
    spec = json.loads(DATA.read_text(encoding="utf-8"))
    voices = Voices(settings, spec["voices"], scratch)
    names = [str(v["name"]) for v in spec["voices"]]
    edges = {str(e["name"]): e for e in spec["edges"]}
    order = list(edges)
    rng = np.random.default_rng(25)
    items: list[Item] = []
    for v, voice in enumerate(names):
        for n, line in enumerate(spec["lines"]):
            edge = edges[order[(v + n) % len(order)]]
            filler = (
                voices.say(voice, "hmm" if edge["filler"] == "hm" else "uh") if "filler" in edge else None
            )
            audio = with_edges(voices.say(voice, line), edge, rng, filler)
            items.append(Item(f"{voice}/line{n}", voice, "line", str(edge["name"]), line, audio))
        for n, word in enumerate(spec["alone"]):
            edge = edges[spec["alone_edges"][(v + n) % len(spec["alone_edges"])]]
            audio = with_edges(voices.say(voice, word), edge, rng, None)
            items.append(Item(f"{voice}/alone{n}", voice, "alone", str(edge["name"]), word, audio))
    pairs = [(names[0], names[2]), (names[1], names[3])]
    for first, second in pairs:
        for n, (one, two) in enumerate(spec["exchanges"]):
            gap = np.zeros(int(spec["exchange_gaps_s"][n] * SAMPLE_RATE), dtype=np.float32)
            speech = np.concatenate([voices.say(first, one), gap, voices.say(second, two)])
            edge = {"lead_s": 0.3, "tail_s": 0.6 + 0.3 * n, "noise_dbfs": -50}
            audio = with_edges(speech, edge, rng, None)
            items.append(
                Item(
                    f"{first}+{second}/exchange{n}",
                    f"{first}+{second}",
                    "exchange",
                    "noise -50 dBFS",
                    f"{one} {two}",
                    audio,
                )
            )
    items += real_call()
    for item in items:
        item.audio = np.clip(item.audio, -1.0, 1.0)
    return items


def real_call() -> list[Item]:
    """Real human speech: the 30 s phone call pyannote.audio ships as its sample (sample.wav, two people,
    with a transcript of its 13 lines in sample.stm). Each line cut as the endpointer would (its pre-roll
    before, a tail after, neither reaching into the neighbouring lines), the call's opening as one segment
    from its pre-roll, and the whole file (6.7 s of line noise first) as one segment."""
    folder = importlib.resources.files("pyannote.audio") / "sample"
    audio = read_wav(Path(str(folder / "sample.wav")))
    lines: list[tuple[float, float, str]] = []
    for row in (folder / "sample.stm").read_text(encoding="utf-8").splitlines():
        _, _, _speaker, begins, ends, said = row.split(maxsplit=5)
        lines.append((float(begins), float(ends), said))
    items = []
    for n, (start, end, text) in enumerate(lines):
        previous = lines[n - 1][1] if n else 0.0
        following = lines[n + 1][0] if n + 1 < len(lines) else len(audio) / SAMPLE_RATE
        lead = max(start - PRE_ROLL_S, previous)
        tail = min(end + TAIL_S, following)
        cut = audio[int(lead * SAMPLE_RATE) : int(tail * SAMPLE_RATE)]
        items.append(Item(f"call/line{n:02d}", "call", "real", "real", text, cut))
    opening_end = min(lines[3][1] + TAIL_S, lines[4][0])  # up to where the other speaker answers
    opening = audio[int((lines[0][0] - PRE_ROLL_S) * SAMPLE_RATE) : int(opening_end * SAMPLE_RATE)]
    items.append(Item("call/opening", "call", "real", "real", " ".join(t for *_, t in lines[:4]), opening))
    items.append(Item("call/whole", "call", "real", "real", " ".join(t for *_, t in lines), audio))
    return items


Transcribe = Callable[[Item], str]


def sequential(transcriber: WhisperxTranscriber, **options: Any) -> Transcribe:
    """faster-whisper's own (sequential) decoder on the same model, with the guards whisperx's batched
    pipeline accepts but never applies (temperature fallback, the thresholds, conditioning)."""
    model = transcriber._pipeline.model
    asr = transcriber._pipeline.options

    def run(item: Item) -> str:
        audio = np.concatenate([transcriber._lead_in, item.audio])
        segments, _ = model.transcribe(
            audio,
            language="en",
            beam_size=asr.beam_size,
            initial_prompt=asr.initial_prompt,
            hotwords=asr.hotwords,
            suppress_blank=asr.suppress_blank,
            vad_filter=False,
            **options,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    return run


def batched(transcriber: WhisperxTranscriber, **options: Any) -> Transcribe:
    """The shipped transcriber with some of whisperx's batched options changed."""
    changed = dataclasses.replace(transcriber._pipeline.options, **options)

    def run(item: Item) -> str:
        kept = transcriber._pipeline.options
        transcriber._pipeline.options = changed
        try:
            return transcriber.transcribe(item.audio).text
        finally:
            transcriber._pipeline.options = kept

    return run


def with_history(transcriber: WhisperxTranscriber, bot_name: str, turns: int) -> Transcribe:
    """The initial prompt also holds what was heard from this voice before (the conversation so far)."""
    heard: dict[str, list[str]] = {}

    def run(item: Item) -> str:
        before = heard.setdefault(item.voice, [])
        prompt = " ".join([f"A voice chat with {bot_name}.", *before[-turns:]])
        text = batched(transcriber, initial_prompt=prompt)(item)
        before.append(text)
        return text

    return run


def edged(run: Transcribe, pad_ms: int, collapse: bool) -> Transcribe:
    """`run` on the audio cut to silero-vad's voiced stretch plus `pad_ms`, its text's loops collapsed."""
    vad = SileroVoiceActivity()

    def go(item: Item) -> str:
        vad.reset()
        span = voice_span(item.audio, vad.probability, int(pad_ms * SAMPLE_RATE / 1000))
        text = run(dataclasses.replace(item, audio=item.audio[span.start : span.end]))
        return collapse_repeats(text, span.voiced_s) if collapse else text

    return go


GUARDS = {"compression_ratio_threshold": 2.4, "log_prob_threshold": -1.0, "no_speech_threshold": 0.6}
NO_GUARDS = {"compression_ratio_threshold": None, "log_prob_threshold": None, "no_speech_threshold": None}
FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def variants(settings: MachineSettings) -> dict[str, Callable[[], Transcribe]]:
    """Name -> a factory of the variant (models load only for the variants asked for). Each changes one
    thing from "before" (the transcriber as it was: whisperx's batched decoder, no trimming, no collapse)
    unless its name says more."""
    base = settings.transcriber
    before = base.model_copy(update={"decoder": "batched", "trim_to_voice": False, "collapse_repeats": False})
    cache: dict[str, WhisperxTranscriber] = {}

    def transcriber(**update: Any) -> WhisperxTranscriber:
        key = json.dumps(update, sort_keys=True)
        if key not in cache:
            cache[key] = WhisperxTranscriber(before.model_copy(update=update), settings.bot_name)
        return cache[key]

    def shipped() -> Transcribe:
        """The transcriber as configured (the defaults chosen here)."""
        chosen = WhisperxTranscriber(base, settings.bot_name)
        return lambda item: chosen.transcribe(item.audio).text

    def plain(**update: Any) -> Transcribe:
        chosen = transcriber(**update)
        return lambda item: chosen.transcribe(item.audio).text

    return {
        "before": plain,
        "suppress_blank off": lambda: batched(transcriber(), suppress_blank=False),
        "timestamps on": lambda: batched(transcriber(), without_timestamps=False),
        "seq greedy, no guards": lambda: sequential(
            transcriber(), temperature=0.0, condition_on_previous_text=False, **NO_GUARDS
        ),
        "seq greedy + thresholds": lambda: sequential(
            transcriber(), temperature=0.0, condition_on_previous_text=False, **GUARDS
        ),
        "seq fallback + thresholds": lambda: sequential(
            transcriber(), temperature=FALLBACK, condition_on_previous_text=False, **GUARDS
        ),
        "seq fallback + thr + cond": lambda: sequential(
            transcriber(), temperature=FALLBACK, condition_on_previous_text=True, **GUARDS
        ),
        "trim pad 100 ms": lambda: plain(trim_to_voice=True, trim_pad_ms=100),
        "trim pad 200 ms": lambda: plain(trim_to_voice=True, trim_pad_ms=200),
        "trim pad 300 ms": lambda: plain(trim_to_voice=True, trim_pad_ms=300),
        "collapse repeats": lambda: plain(collapse_repeats=True),
        "prompt + last 2 heard": lambda: with_history(transcriber(), settings.bot_name, 2),
        "seq fallback + thr + trim 300": lambda: edged(
            sequential(transcriber(), temperature=FALLBACK, condition_on_previous_text=False, **GUARDS),
            300,
            collapse=False,
        ),
        "seq greedy + thr + trim 300": lambda: edged(
            sequential(transcriber(), temperature=0.0, condition_on_previous_text=False, **GUARDS),
            300,
            collapse=False,
        ),
        "trim 300 ms + collapse": lambda: plain(trim_to_voice=True, trim_pad_ms=300, collapse_repeats=True),
        "shipped (after)": shipped,
    }


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def wer_of(selected: list[dict[str, Any]]) -> float:
        return round(word_error_rate([(r["reference"], r["heard"]) for r in selected]), 4)

    return {
        "segments": len(rows),
        "wer": wer_of(rows),
        "wer_piper": wer_of([r for r in rows if r["voice"] == "piper"]),
        "wer_espeak": wer_of(
            [r for r in rows if r["voice"].startswith("espeak") and r["kind"] != "exchange"]
        ),
        "wer_exchanges": wer_of([r for r in rows if r["kind"] == "exchange"]),
        "wer_real": wer_of([r for r in rows if r["kind"] == "real"]),
        "edge_insertions": sum(r["edge_insertions"] for r in rows),
        "hallucinated_repeats": sum(r["hallucinated_repeat"] for r in rows),
        "heard_nothing": sum(1 for r in rows if not plain_words(r["heard"])),
        "seconds_per_segment": round(float(np.mean([r["seconds"] for r in rows])), 3),
    }


COLUMNS = (
    ("wer", "WER", "{:.1%}"),
    ("wer_piper", "piper", "{:.1%}"),
    ("wer_espeak", "espeak", "{:.1%}"),
    ("wer_exchanges", "exch.", "{:.1%}"),
    ("wer_real", "real", "{:.1%}"),
    ("edge_insertions", "edge ins", "{}"),
    ("hallucinated_repeats", "repeats", "{}"),
    ("heard_nothing", "nothing", "{}"),
    ("seconds_per_segment", "s/seg", "{:.2f}"),
)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'variant':<28}" + "".join(f"{title:>10}" for _, title, _ in COLUMNS))
    for name, summary in results.items():
        print(f"{name:<28}" + "".join(f"{fmt.format(summary[key]):>10}" for key, _, fmt in COLUMNS))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path)
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    parser.add_argument("--keep", type=Path, help="write the set's WAVs and references here")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "transcription_edges.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing: run `make system-packages` (apt-get install espeak-ng)")
    settings = load_settings(args.config)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        items = build_set(settings, Path(scratch))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for item in items:
            write_wav(args.keep / (item.name.replace("/", "_") + ".wav"), item.audio, SAMPLE_RATE)
        references = {item.name: item.reference for item in items}
        (args.keep / "references.json").write_text(json.dumps(references, indent=1), encoding="utf-8")
    print(f"{len(items)} segments, {sum(len(i.audio) for i in items) / SAMPLE_RATE:.0f} s of audio")
    available = variants(settings)
    chosen = args.variants.split(",") if args.variants else list(available)
    results: dict[str, dict[str, Any]] = {}
    all_rows: dict[str, list[dict[str, Any]]] = {}
    for name in chosen:
        run = available[name]()
        run(items[0])  # warm-up, not counted
        rows = []
        for item in items:
            begun = time.perf_counter()
            heard = run(item)
            rows.append(
                {
                    "item": item.name,
                    "voice": item.voice,
                    "kind": item.kind,
                    "edge": item.edge,
                    "reference": item.reference,
                    "heard": heard,
                    "seconds": round(time.perf_counter() - begun, 3),
                    "edge_insertions": edge_insertions(item.reference, heard),
                    "hallucinated_repeat": hallucinated_repeat(item.reference, heard),
                }
            )
        results[name] = score(rows)
        all_rows[name] = rows
        print(f"{name}: {results[name]}", flush=True)
    print_table(results)
    write_result(
        args.output,
        {
            "benchmark": "transcription_edges",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "command": " ".join(["bench/transcription_edges.py", *sys.argv[1:]]),
            "segments": len(items),
            "wall_s": round(time.perf_counter() - started, 1),
            "results": results,
            "rows": all_rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
