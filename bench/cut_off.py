"""Cut-off benchmark: sentences with a pause in the middle, through the real runtime in real time.

    .venv/bin/python bench/cut_off.py [--utterances N] [--config FILE] [--models smart_turn,silence]
                                      [--silences 500,700,900,1100]

Each utterance is one sentence spoken by the bundled Piper voice with a 400-800 ms pause where a speaker
stops to think ("I was thinking … about getting a dog for my little sister."). The same files are played
to the runtime once per turn-end model (`smart_turn`, and `silence`: only the silence of
`end_silence_ms` ends a turn), and each turn is matched to the utterance it came from by its words.

Per model it counts: utterances heard whole (one turn, and it heard both halves), replies to half a
sentence (a turn with a reply whose transcript misses most of the words after the pause), double
replies (two turns with replies from one utterance), and retracted replies (a reply that started to
play and was stopped because the speaker went on: whole in the end, but the listener heard the bot
start). With `--silences`, the plain silence timer runs once per `end_silence_ms` given, shortest first,
until one keeps the set whole: the shipped settings are shown beside the best plain timer (the turn
model must be faster at the same or fewer cut-offs, or make fewer false starts, to earn its
keep). Writes bench/results/cut_off.json (or --output).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import from_tests
import numpy as np
from turn_latency import machine_description, write_result

from machine.audio.files import to_mono_16k, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.runs.recorded import run_recorded
from machine.settings import MachineSettings, load_settings
from machine.turn_metrics import TurnRecord, summarise
from memory_store import load_settings as load_memory_settings

with_pause = from_tests.load("mid_sentence_pause").with_pause
words = from_tests.load("speech").words

SENTENCES = (
    ("I was thinking", "about getting a dog for my little sister."),
    ("So yesterday I went to the", "new club world with my friends."),
    ("My cat is called Pickles and", "she is orange."),
    ("Do you know", "what the best world for dancing is?"),
    ("The thing I like most about this place is", "the music at night."),
    ("When I was a kid I always wanted", "to be an astronaut."),
    ("Can you tell me", "what time the event starts tonight?"),
    ("I think we should", "go to the beach world after this."),
    ("My favourite food is probably", "spicy noodles with egg."),
    ("Last weekend my brother and I", "built a treehouse in the garden."),
    ("If you could live anywhere", "where would you want to live?"),
    ("I have been learning to play", "the guitar for two months."),
    ("What do you think about", "people who talk during movies?"),
    ("The best part of my day was", "when my friend surprised me with cake."),
    ("I really want to", "visit Japan next summer."),
    ("Our team lost the game because", "nobody was watching the goal."),
    ("Could you remind me", "what we talked about earlier?"),
    ("I am not sure if", "I should buy a new headset."),
    ("My grandmother makes the best", "apple pie in the whole town."),
    ("Tomorrow I have to", "finish my science project."),
    ("The avatar I am wearing is", "a fox with blue eyes."),
    ("Would you rather", "fly like a bird or swim like a fish?"),
)
PAUSES_S = (0.4, 0.5, 0.6, 0.7, 0.8)
SPEEDS = (1.0, 1.15)


@dataclass
class Scored:
    """One utterance and the turns it led to."""

    before: str
    after: str
    pause_s: float
    turns: list[TurnRecord]

    @property
    def replied(self) -> list[TurnRecord]:
        return [turn for turn in self.turns if turn.reply]

    def half_replies(self) -> int:
        """Turns with a reply that did not hear most of the words after the pause."""
        after = set(words(self.after))
        return sum(len(after & set(words(turn.transcript))) < len(after) / 2 for turn in self.replied)

    def retracted(self) -> bool:
        """A reply started to play and was taken back when the speaker went on (the dropped turn's states
        are carried into the next turn's, so its states hold `speaking` twice): heard, if only briefly."""
        return any(turn.states.count("speaking") > 1 for turn in self.turns)

    def whole(self) -> bool:
        """One turn, and it heard both halves (whether the chat model then replied or gave up)."""
        both = set(words(self.before)) | set(words(self.after))
        return len(self.turns) == 1 and len(both & set(words(self.turns[0].transcript))) >= 0.6 * len(both)


def speak_utterances(settings: MachineSettings, folder: Path, count: int) -> list[tuple[str, str, float]]:
    """Write the utterances as WAV files; returns (before, after, pause) for each."""
    folder.mkdir(parents=True, exist_ok=True)
    spoken = []
    for index, (before, after) in enumerate(SENTENCES[:count]):
        voice = PiperSynthesizer(
            settings.synthesizer.model_copy(update={"length_scale": SPEEDS[index % len(SPEEDS)]})
        )

        def speak(text: str, voice: PiperSynthesizer = voice) -> np.ndarray:
            audio = np.concatenate([chunk.samples for chunk in voice.synthesize(text)])
            return to_mono_16k(audio, voice.sample_rate)

        pause = PAUSES_S[index % len(PAUSES_S)]
        audio, _ = with_pause(speak, before, after, pause)
        write_wav(folder / f"u{index + 1:02d}.wav", audio, 16_000)
        spoken.append((before, after, pause))
    return spoken


def assign(spoken: list[tuple[str, str, float]], records: list[TurnRecord]) -> list[Scored]:
    """Each turn to the utterance whose words it shares most (turns come in the order played)."""
    scored = [Scored(before, after, pause, []) for before, after, pause in spoken]
    at = 0
    for record in records:
        heard = set(words(record.transcript))
        overlaps = [len(heard & (set(words(s.before)) | set(words(s.after)))) for s in scored[at:]]
        if not overlaps or max(overlaps) == 0:
            continue
        at += int(np.argmax(overlaps))
        scored[at].turns.append(record)
    return scored


def run_model(
    settings: MachineSettings,
    turn_model: str,
    questions: Path,
    scratch: Path,
    spoken: list[tuple[str, str, float]],
    end_silence_ms: int | None = None,
) -> dict[str, object]:
    """One pass of the set with `turn_model` (and, for `silence`, `end_silence_ms` if given)."""
    update: dict[str, object] = {"turn_model": turn_model}
    if end_silence_ms is not None:
        update["end_silence_ms"] = end_silence_ms
    endpointing = settings.endpointing.model_copy(update=update)
    configured = settings.model_copy(update={"endpointing": endpointing})
    name = turn_model if end_silence_ms is None else f"{turn_model}-{end_silence_ms}"
    memory = load_memory_settings(None).model_copy(update={"path": scratch / f"store-{name}"})
    records = run_recorded(configured, memory, questions, scratch / f"replies-{name}", realtime=True)
    scored = assign(spoken, records)
    for item in scored:
        heard = " / ".join(turn.transcript for turn in item.turns) or "-"
        print(f"  [{name}] {item.pause_s:.1f}s  {item.before} … {item.after}  ->  {heard}")
    v2v = summarise(records).get("voice_to_voice", {})
    return {
        "utterances": len(scored),
        "heard_whole": sum(item.whole() for item in scored),
        "given_up": sum(turn.outcome == "gave_up" for turn in records),
        "replies_to_half_a_sentence": sum(item.half_replies() for item in scored),
        "double_replies": sum(len(item.replied) > 1 for item in scored),
        "retracted_replies": sum(item.retracted() for item in scored),
        "turns": len(records),
        "voice_to_voice_s": {key: round(value, 4) for key, value in v2v.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--utterances", type=int, default=len(SENTENCES), help=f"1-{len(SENTENCES)}")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--models", default="smart_turn,silence", help="turn-end models, comma-separated")
    parser.add_argument(
        "--silences", default="", help="end_silence_ms values for the plain timer, comma-separated (a sweep)"
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "cut_off.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(args.config)
    scratch = args.output.parent / "scratch-cut-off"
    shutil.rmtree(scratch, ignore_errors=True)
    spoken = speak_utterances(settings, scratch / "utterances", args.utterances)
    results: dict[str, object] = {}
    for turn_model in args.models.split(","):
        results[turn_model] = run_model(settings, turn_model, scratch / "utterances", scratch, spoken)
    for silence_ms in sorted(int(value) for value in args.silences.split(",") if value.strip()):
        swept = run_model(settings, "silence", scratch / "utterances", scratch, spoken, silence_ms)
        results[f"silence-{silence_ms}"] = swept
        if swept["heard_whole"] == swept["utterances"]:
            results["best_silence_timer_ms"] = silence_ms  # the shortest that keeps the set whole
            break
    shutil.rmtree(scratch, ignore_errors=True)
    header = f"{'turn model':<12}{'whole':>7}{'half replies':>14}{'double':>8}{'retracted':>11}{'turns':>7}"
    print(f"\n{header}{'v2v p50 ms':>12}")
    for name, row in results.items():
        if not isinstance(row, dict):
            continue
        result = row
        v2v = result["voice_to_voice_s"]
        median = f"{v2v['median'] * 1000:.0f}" if isinstance(v2v, dict) and v2v else "-"
        print(
            f"{name:<12}{result['heard_whole']:>4}/{result['utterances']:<2}"
            f"{result['replies_to_half_a_sentence']:>14}{result['double_replies']:>8}"
            f"{result['retracted_replies']:>11}{result['turns']:>7}{median:>12}"
        )
    write_result(
        args.output,
        {
            "benchmark": "cut_off",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "pauses_s": list(PAUSES_S),
            "models": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
