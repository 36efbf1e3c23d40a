"""Conversation-quality benchmark: scripted conversations, spoken, through the real runtime.

    .venv/bin/python bench/conversation_quality.py [--conversations N] [--config FILE]
        [--model ID_OR_FOLDER [--gguf-file NAME]] [--device cpu|cuda]
        [--backend transformers|openai --base-url URL --server-model NAME] [--output FILE]
    .venv/bin/python bench/conversation_quality.py --rescore bench/results/conversation_quality_before.json

The conversations in bench/data/conversations.json (facts stated early and asked about later, plus single
questions) are spoken by Piper and espeak-ng at several rates, and the runtime converses over each file
by file (no real-time pacing), each in a fresh memory of its own. Per run it reports:

- hearing: word error rate of the runtime's endpointed segments against the script, and of the whole
  files transcribed by the same model;
- fact recall: the share of fact questions whose reply names the fact;
- on-topic: the share of replies whose embedding similarity to the question passes the threshold that
  best separates the hand-labelled pairs in bench/data/on_topic_labels.json (calibration reported);
- repeated openings: replies whose first three words open an earlier reply of the conversation;
- echo and role confusion: replies saying six or more words in a row of the input they answer back
  (parroting); replies claiming a fact the user stated as the bot's own, or narrating the conversation
  instead of answering in it ("The user will say ...", judged like the reply check `narration`; counted
  since issue #25, so earlier runs re-scored with --rescore count more). Also reported, not a defect:
  replies saying six or more words of something the user said earlier (an answer from memory does);
- strikes and give-ups per turn;
- invented words (since issue #25): words heard in a segment before the first or after the last word of
  its scripted line (edge insertions), and lines heard with a word or phrase repeated three or more times
  in a row that the script has fewer times (hallucinated repeats).

Prints a table and writes every turn to bench/results/conversation_quality.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edge_measures import edge_insertions, hallucinated_repeat
from model_options import add_model_options, model_name, with_model
from quality_measures import (
    align,
    calibrate,
    mark_echoes,
    mark_role_confusion,
    recalls,
    repeats_opening,
    wer,
)
from turn_latency import machine_description, write_result

from machine.audio.files import read_wav, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.runs.recorded import run_recorded
from machine.settings import MachineSettings, load_settings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings
from memory_store.embedding import SentenceTransformerEmbedder

DATA = Path(__file__).parent / "data"
SCRIPT = DATA / "conversations.json"
LABELS = DATA / "on_topic_labels.json"
MIN_LABELS = 50


@dataclass(frozen=True)
class Conversation:
    name: str
    voice: dict[str, object]
    turns: list[dict[str, object]]


def load_script() -> list[Conversation]:
    data = json.loads(SCRIPT.read_text(encoding="utf-8"))
    conversations = [Conversation(c["name"], c["voice"], c["turns"]) for c in data["conversations"]]
    single = data["single_questions"]
    return [*conversations, Conversation("single", single["voice"], single["turns"])]


def speak(settings: MachineSettings, voice: dict[str, object], lines: list[str], folder: Path) -> None:
    """Each line into folder/qNN.wav, in the conversation's voice."""
    folder.mkdir(parents=True, exist_ok=True)
    if voice["engine"] == "espeak":
        if shutil.which("espeak-ng") is None:
            raise SystemExit("espeak-ng is missing: run `make system-packages` (apt-get install espeak-ng)")
        for index, line in enumerate(lines, start=1):
            command = ["espeak-ng", "-v", str(voice["voice"]), "-s", str(voice["words_per_minute"])]
            subprocess.run([*command, "-w", str(folder / f"q{index:02d}.wav"), line], check=True)
        return
    piper = PiperSynthesizer(settings.synthesizer.model_copy(update={"length_scale": voice["length_scale"]}))
    for index, line in enumerate(lines, start=1):
        audio = np.concatenate([chunk.samples for chunk in piper.synthesize(line)])
        write_wav(folder / f"q{index:02d}.wav", audio, piper.sample_rate)


def converse(
    settings: MachineSettings, memory: MemoryStoreSettings, conversation: Conversation, folder: Path
) -> list[TurnRecord]:
    """The runtime over the conversation's files, in a memory block of its own, from a fresh session."""
    block = f"quality-{conversation.name}"
    return run_recorded(
        settings.model_copy(update={"memory_block": block}),
        memory,
        folder / "questions",
        folder / "replies",
        realtime=False,
        fresh_session=True,
    )


def turn_rows(
    conversation: Conversation, records: list[TurnRecord], whole: list[str]
) -> list[dict[str, object]]:
    """One row per scripted line: what the runtime heard and said for it, and each measure."""
    script = [str(turn["say"]) for turn in conversation.turns]
    owners = align(script, [r.transcript for r in records])
    rows: list[dict[str, object]] = []
    replies: list[str] = []
    for turn, mine, whole_text in zip(conversation.turns, owners, whole, strict=True):
        own = [records[i] for i in mine]
        reply = " ".join(" ".join(r.reply) for r in own)
        heard = " ".join(r.transcript for r in own)
        row: dict[str, object] = {
            "conversation": conversation.name,
            "say": turn["say"],
            "heard": heard,
            "whole_file": whole_text,
            "reply": reply,
            "turns": len(own),
            "strikes": [s for r in own for s in r.strikes],
            "gave_up": any(r.outcome == "gave_up" for r in own),
        }
        if "expect" in turn:
            row["recalled"] = recalls(reply, turn["expect"])  # type: ignore[arg-type]
        if reply:
            row["repeated_opening"] = repeats_opening(reply, replies)
            replies.append(reply)
        rows.append(row)
    return rows


def stated_facts(conversations: list[Conversation]) -> dict[tuple[str, str], list[str]]:
    """Per (conversation, scripted line), the facts the line states (its "claims"), for role confusion."""
    facts: dict[tuple[str, str], list[str]] = {}
    for conversation in conversations:
        for turn in conversation.turns:
            claims = turn.get("claims", [])
            assert isinstance(claims, list), claims
            facts[(conversation.name, str(turn["say"]))] = [str(fact) for fact in claims]
    return facts


def on_topic(rows: list[dict[str, object]]) -> dict[str, object]:
    """Question-reply similarity, and the share passing the threshold calibrated on the labels."""
    embedder = SentenceTransformerEmbedder()
    answered = [r for r in rows if r["reply"]]

    def similarities(pairs: list[tuple[str, str]]) -> list[float]:
        questions = embedder.embed([q for q, _ in pairs])
        replies = embedder.embed([a for _, a in pairs])
        return [float(np.dot(q, a)) for q, a in zip(questions, replies, strict=True)]

    asked = similarities([(str(r["say"]), str(r["reply"])) for r in answered])
    for row, similarity in zip(answered, asked, strict=True):
        row["similarity"] = round(similarity, 3)
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["pairs"] if LABELS.exists() else []
    if len(labels) < MIN_LABELS:
        return {"calibrated": False, "why": f"{len(labels)} labelled pairs in {LABELS} (need {MIN_LABELS})"}
    threshold, accuracy = calibrate(
        similarities([(p["question"], p["reply"]) for p in labels]), [bool(p["on_topic"]) for p in labels]
    )
    for row in answered:
        row["on_topic"] = float(row["similarity"]) >= threshold  # type: ignore[arg-type]
    return {
        "calibrated": True,
        "labels": len(labels),
        "labelled_on_topic": sum(bool(p["on_topic"]) for p in labels),
        "threshold": round(threshold, 3),
        "accuracy_on_labels": round(accuracy, 3),
    }


def share(rows: list[dict[str, object]], key: str) -> dict[str, float]:
    judged = [bool(r[key]) for r in rows if key in r]
    return {"n": len(judged), "share": round(sum(judged) / len(judged), 3) if judged else 0.0}


def strike_count(row: dict[str, object]) -> int:
    strikes = row["strikes"]
    assert isinstance(strikes, list), strikes
    return len(strikes)


def summary(rows: list[dict[str, object]], calibration: dict[str, object]) -> dict[str, object]:
    hearing = [(str(r["say"]), str(r["heard"])) for r in rows]
    whole = [(str(r["say"]), str(r["whole_file"])) for r in rows]
    strikes = sum(strike_count(r) for r in rows)
    return {
        "turns": len(rows),
        "unheard": sum(1 for r in rows if not r["turns"]),
        "wer_segments": round(wer(hearing), 4),
        "wer_whole_files": round(wer(whole), 4),
        "invented_words": invented_words(hearing),
        "fact_recall": share(rows, "recalled"),
        "on_topic": share(rows, "on_topic"),
        "on_topic_calibration": calibration,
        "repeated_openings": share(rows, "repeated_opening"),
        "echo": share(rows, "echo"),
        "restates_earlier": share(rows, "restates_earlier"),
        "role_confusion": share(rows, "role_confusion"),
        "strikes_per_turn": round(strikes / len(rows), 3),
        "give_ups": share(rows, "gave_up"),
    }


def invented_words(hearing: list[tuple[str, str]]) -> dict[str, int]:
    """Words whisper made up in the runtime's segments (issue #25 item 2): words heard before the first
    or after the last scripted word, and lines heard with a word or phrase repeated 3+ times in a row
    that was said fewer times (bench/edge_measures.py)."""
    return {
        "n": len(hearing),
        "edge_insertions": sum(edge_insertions(said, heard) for said, heard in hearing),
        "hallucinated_repeats": sum(hallucinated_repeat(said, heard) for said, heard in hearing),
    }


def print_summary(result: dict[str, object]) -> None:
    print(f"\n{'measure':<22}{'value':>10}{'n':>6}")
    for key in ("wer_segments", "wer_whole_files", "strikes_per_turn"):
        print(f"{key:<22}{result[key]:>10}")
    invented = result["invented_words"]
    assert isinstance(invented, dict)
    for key in ("edge_insertions", "hallucinated_repeats"):
        print(f"{key:<22}{invented[key]:>10}{invented['n']:>6}")
    for key in (
        "fact_recall",
        "on_topic",
        "repeated_openings",
        "echo",
        "restates_earlier",
        "role_confusion",
        "give_ups",
    ):
        value = result[key]
        assert isinstance(value, dict)
        print(f"{key:<22}{value['share']:>10.1%}{value['n']:>6}")
    print(f"on-topic calibration: {result['on_topic_calibration']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, help="only the first N conversations")
    parser.add_argument("--config", type=Path)
    add_model_options(parser)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "conversation_quality.json"
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        help="score an earlier result file again (after new labels or measures), in place",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.rescore:
        earlier = json.loads(args.rescore.read_text(encoding="utf-8"))
        rows: list[dict[str, object]] = earlier["rows"]
        mark_echoes(rows)
        mark_role_confusion(rows, stated_facts(load_script()))
        earlier.update(summary(rows, on_topic(rows)), rows=rows)
        print_summary(earlier)
        write_result(args.rescore, earlier)
        return 0
    settings = with_model(load_settings(args.config), args)
    conversations = load_script()[: args.conversations]
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        memory = load_memory_settings(args.config).model_copy(update={"path": Path(scratch) / "memory"})
        transcriber = WhisperxTranscriber(settings.transcriber, settings.bot_name)
        for conversation in conversations:
            folder = Path(scratch) / conversation.name
            lines = [str(turn["say"]) for turn in conversation.turns]
            speak(settings, conversation.voice, lines, folder / "questions")
            whole = [
                transcriber.transcribe(read_wav(folder / "questions" / f"q{i:02d}.wav")).text
                for i in range(1, len(lines) + 1)
            ]
            print(f"\n== {conversation.name} ({conversation.voice})", flush=True)
            records = converse(settings, memory, conversation, folder)
            rows += turn_rows(conversation, records, whole)
    mark_echoes(rows)
    mark_role_confusion(rows, stated_facts(conversations))
    calibration = on_topic(rows)
    result: dict[str, object] = {
        "benchmark": "conversation_quality",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "model": model_name(settings),
        "backend": settings.chat_model.backend,
        "conversations": len(conversations),
        "wall_s": round(time.perf_counter() - started, 1),
        **summary(rows, calibration),
        "rows": rows,
    }
    print_summary(result)
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
