"""Per-turn timestamps and the latency stages derived from them.

All timestamps are `time.monotonic()` seconds. Voice-to-voice latency is the first audio sample out
minus the last voiced sample in. The record never holds audio.

A turn whose work started early, at a pause (`early`), is transcribed and thought about while the end of
the speaker's turn is still undecided, so its stages overlap: `transcribe` runs from `heard` (the pause),
not from `endpoint` (the end of the turn), and `wait_for_end` is how long a ready reply waited for it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from machine.ports import PlaybackReport

#: (stage name, from timestamp, to timestamp): the stages reported per turn and by the benchmark.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("endpoint", "last_voiced", "endpoint"),
    ("transcribe", "heard", "transcript_ready"),
    ("first_token", "transcript_ready", "first_token"),
    ("first_sentence", "first_token", "first_sentence"),
    ("wait_for_end", "first_sentence", "released"),
    ("first_audio", "released", "first_audio"),
    ("voice_to_voice", "last_voiced", "first_audio"),
    ("turn_total", "last_voiced", "done"),
)


@dataclass
class TurnRecord:
    """What happened in one turn, and when."""

    turn: int
    last_voiced: float
    endpoint: float
    heard: float | None = None
    """When the utterance reached the bot: the end of the turn, or for an `early` turn the pause."""
    early: bool = False
    """The work started at a pause, before the end of the turn was known (see the module docstring)."""
    typed: bool = False
    """A chatbox message read on screen, not speech: `last_voiced` is when its text was first read and
    `endpoint` when it had stayed the same long enough (see :mod:`machine.vision.chatbox`)."""
    transcript_ready: float | None = None
    first_token: float | None = None
    first_sentence: float | None = None
    released: float | None = None
    """When the reply was released to the speaker."""
    first_audio: float | None = None
    done: float | None = None
    transcript: str = ""
    speaker: str = ""
    """Who said it: their name once they said it, otherwise "speaker N" (numbered per session)."""
    identify_ms: float = 0.0
    """What telling the speaker apart added to the turn after the transcript was ready (the voice is
    embedded beside the transcription)."""
    prompt_tokens: int = 0
    """The size of the reply's prompt (what grows with the session shows here first)."""
    recall_ms: float = 0.0
    """What the memory took to recall the prompt's history and recollections."""
    reply: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    strikes: list[str] = field(default_factory=list)
    """The failed reply checks of this turn, in order (see :mod:`machine.reply.checks`)."""
    outcome: str = "open"
    """How the turn ended: replied, cut (a strike ended the reply early), gave_up (three strikes),
    interrupted, no_words, not_addressed (the reply policy: someone talking to someone else), no_reply,
    reset, forgotten, or failed."""
    playback: PlaybackReport = field(default_factory=PlaybackReport)
    """How the reply's audio fared: seconds synthesised and delivered, device underruns."""

    def stages(self) -> dict[str, float]:
        """Each stage's duration in seconds, for the stages whose two timestamps are known."""
        times = asdict(self)
        return {
            name: times[end] - times[start]
            for name, start, end in STAGES
            if times.get(start) is not None and times.get(end) is not None
        }

    def to_json(self) -> str:
        """One JSON line: the timestamps, the stage durations, the state sequence and the texts."""
        record = asdict(self)
        record["stages"] = {name: round(value, 4) for name, value in self.stages().items()}
        return json.dumps(record, ensure_ascii=False)


def median_and_p95(values: Iterable[float]) -> dict[str, float]:
    """n, median and 95th percentile (nearest rank) of `values`; empty when there are none."""
    ordered = sorted(values)
    if not ordered:
        return {}
    p95_index = min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))
    return {"n": len(ordered), "median": statistics.median(ordered), "p95": ordered[p95_index]}


def summarise(records: list[TurnRecord]) -> dict[str, dict[str, float]]:
    """Median and 95th percentile (seconds) of every stage over the turns that have it."""
    summary: dict[str, dict[str, float]] = {}
    for name, _, _ in STAGES:
        spread = median_and_p95(r.stages()[name] for r in records if name in r.stages())
        if spread:
            summary[name] = spread
    return summary


def latency_table(records: list[TurnRecord]) -> str:
    """A plain-text table of every stage: n, median and p95 in milliseconds."""
    rows = [f"{'stage':<16}{'n':>4}{'median ms':>12}{'p95 ms':>10}"]
    for name, values in summarise(records).items():
        rows.append(
            f"{name:<16}{int(values['n']):>4}{values['median'] * 1000:>12.0f}{values['p95'] * 1000:>10.0f}"
        )
    return "\n".join(rows)
