"""Speaker change: does a change of voice end a turn, without splitting one speaker's turn?

    .venv/bin/python bench/speaker_change.py [--threshold T] [--output FILE]

Two kinds of conversation, each played through the real endpointer (silero-vad, Smart Turn, the shipped
endpointing settings) chunk by chunk, once without and once with the speaker-change check
(`machine.speakers.change_threshold`):

- real human speech: the 30 s phone call pyannote.audio ships (two people, 13 lines, 0.1-0.5 s between
  speakers; sample.stm gives who spoke when);
- the crowd benchmark's scenes (Piper and five espeak-ng voices, bench/data/crowd.json) as quick
  exchanges: each line follows the one before after 0-0.4 s (seeded), with no pause at all for one in four.

Per conversation it counts the utterances found, the changes of speaker that ended one (an utterance ends
within 0.3 s of the change), the utterances split inside one speaker's line, and the purity of what was
found (the share of each utterance's speech time that is its main speaker's). It also prints the
cosine similarity of the voices the check compares at each change of speaker and inside lines. Writes
bench/results/speaker_change.json.
"""

from __future__ import annotations

import argparse
import importlib.resources
import itertools
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from crowd import SCRIPT, synthesise
from transcription_edges import trim_digital_silence
from turn_latency import machine_description, write_result

from machine.app import build_voice_encoder, turn_end_model
from machine.audio.files import read_wav
from machine.backends.silero_vad import SileroVoiceActivity
from machine.crowd.speaker_change import SpeakerChange
from machine.listen.endpointing import Ended, Endpointer
from machine.ports import CHUNK_MS, CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk
from machine.settings import EndpointingSettings, load_settings

NEAR_S = 0.3
"""An utterance that ends this close to a change of speaker ended at it."""


@dataclass
class Spoken:
    """A line as said: who, from when to when (seconds into the conversation)."""

    who: str
    begins: float
    ends: float


@dataclass
class Conversation:
    name: str
    audio: np.ndarray
    lines: list[Spoken] = field(default_factory=list)


def phone_call() -> Conversation:
    folder = importlib.resources.files("pyannote.audio") / "sample"
    audio = read_wav(Path(str(folder / "sample.wav")))
    lines = []
    for row in (folder / "sample.stm").read_text(encoding="utf-8").splitlines():
        _, _, who, begins, ends, _said = row.split(maxsplit=5)
        lines.append(Spoken(who, float(begins), float(ends)))
    return Conversation("human phone call (pyannote sample)", audio, lines)


def quick_exchanges() -> list[Conversation]:
    spec = json.loads(SCRIPT.read_text(encoding="utf-8"))
    said = synthesise(spec["voices"], spec["scenes"])
    rng = np.random.default_rng(7)
    conversations = []
    for scene in sorted({line.scene for line in said}):
        parts = [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
        lines: list[Spoken] = []
        at = 0.5
        for line in (x for x in said if x.scene == scene):
            gap = 0.0 if rng.random() < 0.25 else float(rng.uniform(0.0, 0.4))
            if lines:
                parts.append(np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32))
                at += gap
            speech = trim_digital_silence(line.speech)
            parts.append(speech)
            lines.append(Spoken(line.who, at, at + len(speech) / SAMPLE_RATE))
            at += len(speech) / SAMPLE_RATE
        parts.append(np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
        conversations.append(
            Conversation(f"quick exchanges, scene {scene + 1}", np.concatenate(parts), lines)
        )
    return conversations


def segment(
    conversation: Conversation, settings: EndpointingSettings, change: SpeakerChange | None
) -> list[tuple[float, float]]:
    """The utterances the endpointer finds (with `change`, where the voice changes too): (begins, ends)."""
    endpointer = Endpointer(
        SileroVoiceActivity(), settings, turn_end_model(settings), change.changed if change else None
    )
    audio = conversation.audio
    audio = np.pad(audio, (0, -len(audio) % CHUNK_SAMPLES))
    found = []
    for n, samples in enumerate(audio.reshape(-1, CHUNK_SAMPLES)):
        event = endpointer.push(AudioChunk(samples, (n + 1) * CHUNK_MS / 1000))
        if isinstance(event, Ended):
            u = event.utterance
            ends = u.last_voiced_at
            found.append((max(0.0, ends + 0.1 - u.duration_s), ends))
    final = endpointer.flush(len(audio) / SAMPLE_RATE)
    if final is not None:
        found.append(
            (final.utterance.last_voiced_at - final.utterance.duration_s, final.utterance.last_voiced_at)
        )
    return found


def score(conversation: Conversation, found: list[tuple[float, float]]) -> dict[str, object]:
    lines = conversation.lines
    changes = [(a.ends, b.begins) for a, b in itertools.pairwise(lines) if a.who != b.who]
    ended = sum(1 for end, begin in changes if any(end - NEAR_S <= e <= begin + NEAR_S for _, e in found))
    split_inside = sum(
        1 for _, e in found if any(line.begins + NEAR_S < e < line.ends - NEAR_S for line in lines)
    )
    purities = []
    for begins, ends in found:
        share: dict[str, float] = {}
        for line in lines:
            overlap = min(ends, line.ends) - max(begins, line.begins)
            if overlap > 0:
                share[line.who] = share.get(line.who, 0.0) + overlap
        if share:
            purities.append(max(share.values()) / sum(share.values()))
    return {
        "lines": len(lines),
        "changes_of_speaker": len(changes),
        "utterances": len(found),
        "changes_that_ended_an_utterance": ended,
        "utterances_ended_inside_a_line": split_inside,
        "purity_mean": round(statistics.fmean(purities), 3) if purities else None,
    }


def similarities(conversation: Conversation, change: SpeakerChange) -> dict[str, list[float]]:
    """Cosine similarity of 1.6 s before and 1 s after each change of speaker, and inside long lines."""
    audio = conversation.audio
    cut = lambda a, b: audio[int(max(0.0, a) * SAMPLE_RATE) : int(b * SAMPLE_RATE)]  # noqa: E731
    across, within = [], []
    for a, b in itertools.pairwise(conversation.lines):
        if a.who != b.who and a.ends - a.begins >= 0.64 and b.ends - b.begins >= 0.5:
            across.append(change.similarity(cut(a.ends - 1.6, a.ends), cut(b.begins, b.begins + 1.0)))
    for line in conversation.lines:
        if line.ends - line.begins >= 2.0:
            middle = (line.begins + line.ends) / 2
            within.append(
                change.similarity(cut(max(line.begins, middle - 1.6), middle), cut(middle, middle + 1.0))
            )
    return {"across": [round(x, 3) for x in across], "within": [round(x, 3) for x in within]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threshold", type=float, default=None, help="default: the shipped setting")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "speaker_change.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    threshold = args.threshold if args.threshold is not None else settings.speakers.change_threshold
    encoder = build_voice_encoder(settings)
    if encoder is None:
        raise SystemExit("machine.speakers.enabled is off: there is no voice encoder to compare voices with")
    change = SpeakerChange(encoder, threshold)
    started = time.monotonic()
    conversations = [phone_call(), *quick_exchanges()]
    rows = []
    print(f"change threshold {threshold}")
    header = f"{'conversation':<36} {'check':<5} {'utts':>4} {'changes ended':>13} {'split in line':>13}"
    print(f"{header} {'purity':>6}")
    for conversation in conversations:
        for with_change in (False, True):
            found = segment(conversation, settings.endpointing, change if with_change else None)
            result = score(conversation, found)
            rows.append({"conversation": conversation.name, "check": with_change, **result})
            print(
                f"{conversation.name:<36} {'on' if with_change else 'off':<5} {result['utterances']:>4} "
                f"{result['changes_that_ended_an_utterance']:>6}/{result['changes_of_speaker']:<6} "
                f"{result['utterances_ended_inside_a_line']:>13} {result['purity_mean']!s:>6}"
            )
    sims = {c.name: similarities(c, change) for c in conversations}
    across = [x for s in sims.values() for x in s["across"]]
    within = [x for s in sims.values() for x in s["within"]]
    print(f"similarity across a change: {sorted(across)}")
    print(f"similarity inside a line:   {sorted(within)}")
    print(f"took {time.monotonic() - started:.0f} s")
    write_result(
        args.output,
        {
            "machine": machine_description(),
            "command": "bench/speaker_change.py",
            "threshold": threshold,
            "rows": rows,
            "similarities": sims,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
