"""Recall quality of InfiniMemory on a hand-labelled set: do later questions bring back the memory they refer
to, and does small talk bring back nothing? Chooses the recall threshold and what is embedded (issue #11).

    .venv/bin/python bench/recall_quality.py [--top-k K] [--min-similarity T] [--small-talk-gate G] [--check]

The set, bench/data/recall_set.json, holds exchanges (what a user said, what the bot answered), later
questions that each refer back to one of them in other words, and small talk that should recall nothing.
Three ways of embedding a memory are compared with exact cosine similarity on the bundled all-MiniLM-L6-v2:
joint (question and answer together, what the store embedded before), separate (question and answer
apart, a memory scores the better of the two) and question (the user's words only: `Memory.text()`, what
the store embeds now). Per strategy: recall@1
and recall@5 without a threshold; then for each threshold, recall@3 and recall@5 counting only targets at or
above it, and the share of small-talk inputs whose most similar memory reaches it (false recalls).

Then the small-talk gate (memory_store/small_talk.py, an input within cosine G of a small-talk prototype
recalls nothing), for the joint and question strategies: every gate threshold G × recall threshold T × top_k,
counting a question as recalled when its target ranks in the top k, reaches T and the question is not gated,
and a small-talk input as a false recall when it is not gated and its most similar memory reaches T. The
best operating point (≤ 5 % false recalls) is printed with the questions it wrongly gates; to show how much
choosing G and T on this set flatters it, they are also chosen on the even-indexed half of the questions and
of the small talk and reported on the odd half. Last, the same set goes through a real memory block (window
0) with top_k, min_similarity and small_talk_gate as given, by default the shipped `RecallSettings()`. Prints
the tables and writes bench/results/recall_quality.json; `--check` exits 1 unless that block recalls ≥ 95 %
of the targets with ≤ 5 % of small talk recalling anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from turn_latency import machine_description, write_result

from memory_store import Embedder, Memory, MemoryStoreSettings, MemorySystem, SentenceTransformerEmbedder
from memory_store.embedding import Vectors
from memory_store.settings import RecallSettings
from memory_store.small_talk import PROTOTYPES

HERE = Path(__file__).resolve().parent
THRESHOLDS = [round(0.2 + 0.025 * step, 3) for step in range(17)]  # 0.20 .. 0.60
TOP_KS = (3, 5)
GATE_THRESHOLDS = [*(round(0.5 + 0.025 * step, 3) for step in range(13)), 1.0]  # 0.50 .. 0.80, 1.0 = off
GATE_RECALL_THRESHOLDS = [round(0.2 + 0.025 * step, 3) for step in range(11)]  # 0.20 .. 0.45
GATED_STRATEGIES = ("joint", "question")
MIN_RECALL, MAX_FALSE_RECALL = 0.95, 0.05


@dataclass(frozen=True)
class RecallSet:
    """The labelled set: memories, questions with the index of the memory each refers to, small talk."""

    memories: list[Memory]
    questions: list[str]
    targets: npt.NDArray[np.intp]
    small_talk: list[str]


def load_set(path: Path) -> RecallSet:
    """Read the labelled set from its JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    memories = [Memory(item["id"], item["question"], item["answer"], 0.0) for item in data["memories"]]
    position = {memory.id: number for number, memory in enumerate(memories)}
    return RecallSet(
        memories=memories,
        questions=[item["text"] for item in data["questions"]],
        targets=np.array([position[item["target"]] for item in data["questions"]]),
        small_talk=data["small_talk"],
    )


def similarities(embedder: Embedder, recall_set: RecallSet) -> dict[str, tuple[Vectors, Vectors]]:
    """Per strategy, the cosine similarity of each question, and of each small-talk input, to each memory."""
    questions, small_talk = embedder.embed(recall_set.questions), embedder.embed(recall_set.small_talk)
    joint = embedder.embed([f"{memory.question}\n{memory.answer}" for memory in recall_set.memories])
    asked = embedder.embed([memory.question for memory in recall_set.memories])
    answered = embedder.embed([memory.answer for memory in recall_set.memories])
    return {
        "joint": (questions @ joint.T, small_talk @ joint.T),
        "separate": (
            np.maximum(questions @ asked.T, questions @ answered.T),
            np.maximum(small_talk @ asked.T, small_talk @ answered.T),
        ),
        "question": (questions @ asked.T, small_talk @ asked.T),
    }


def evaluate_gates(
    embedder: Embedder, recall_set: RecallSet, by_strategy: dict[str, tuple[Vectors, Vectors]]
) -> dict[str, dict[str, Any]]:
    """The gate sweep of the joint and question strategies; the gate scores are the same for both."""
    prototypes = embedder.embed(PROTOTYPES)
    question_gate = (embedder.embed(recall_set.questions) @ prototypes.T).max(axis=1)
    talk_gate = (embedder.embed(recall_set.small_talk) @ prototypes.T).max(axis=1)
    return {
        name: evaluate_gate(
            gate_scores(*by_strategy[name], recall_set.targets, question_gate, talk_gate),
            recall_set.questions,
        )
        for name in GATED_STRATEGIES
    }


def share(hits: npt.NDArray[np.bool_] | list[bool]) -> float:
    """The fraction of true values, rounded for the tables."""
    return round(float(np.mean(hits)), 4)


def evaluate(asked: Vectors, small_talk: Vectors, targets: npt.NDArray[np.intp]) -> dict[str, Any]:
    """Recall and small-talk false recall of one strategy, without a threshold and at each threshold."""
    target_similarity = asked[np.arange(len(targets)), targets]
    rank = (asked > target_similarity[:, None]).sum(axis=1)  # memories more similar than the target
    talk_top = small_talk.max(axis=1)
    rows = [
        {
            "threshold": threshold,
            **{f"recall_at_{k}": share((rank < k) & (target_similarity >= threshold)) for k in TOP_KS},
            "small_talk_false_recall": share(talk_top >= threshold),
        }
        for threshold in THRESHOLDS
    ]
    allowed = [row for row in rows if row["small_talk_false_recall"] <= MAX_FALSE_RECALL]
    return {
        "recall_at_1": share(rank < 1),
        "recall_at_5": share(rank < 5),
        "target_similarity": {
            name: round(float(function(target_similarity)), 3)
            for name, function in (("min", np.min), ("median", np.median), ("max", np.max))
        },
        "small_talk_top_similarity": {
            "median": round(float(np.median(talk_top)), 3),
            "max": round(float(np.max(talk_top)), 3),
        },
        "thresholds": rows,
        "best": max(allowed, key=lambda row: row["recall_at_5"], default=None),  # the lowest on ties
        "meeting_targets": {
            f"top_{k}": [row["threshold"] for row in allowed if row[f"recall_at_{k}"] >= MIN_RECALL]
            for k in TOP_KS
        },
    }


@dataclass(frozen=True)
class Scores:
    """What the gate sweep needs of one strategy on (part of) the set: similarities, ranks, gate scores."""

    target_similarity: Vectors  # per question, its target's similarity
    rank: npt.NDArray[np.intp]  # per question, how many memories are more similar than its target
    question_gate: Vectors  # per question, its similarity to the nearest small-talk prototype
    talk_top: Vectors  # per small-talk input, its most similar memory's similarity
    talk_gate: Vectors  # per small-talk input, its similarity to the nearest prototype

    def part(self, questions: slice, talk: slice) -> Scores:
        """The scores of some of the questions and some of the small talk."""
        return Scores(
            self.target_similarity[questions],
            self.rank[questions],
            self.question_gate[questions],
            self.talk_top[talk],
            self.talk_gate[talk],
        )


def gate_scores(
    asked: Vectors,
    small_talk: Vectors,
    targets: npt.NDArray[np.intp],
    question_gate: Vectors,
    talk_gate: Vectors,
) -> Scores:
    """One strategy's similarities with the gate scores of the same inputs."""
    target_similarity = asked[np.arange(len(targets)), targets]
    return Scores(
        target_similarity=target_similarity,
        rank=(asked > target_similarity[:, None]).sum(axis=1),
        question_gate=question_gate,
        talk_top=small_talk.max(axis=1),
        talk_gate=talk_gate,
    )


def operating_point(scores: Scores, gate: float, threshold: float, top_k: int) -> dict[str, Any]:
    """Recall and small-talk false recall with the gate at `gate` and recall at `threshold`, `top_k`."""
    passed = scores.question_gate < gate  # not gated
    found = passed & (scores.target_similarity >= threshold)
    return {
        "gate": gate,
        "threshold": threshold,
        "top_k": top_k,
        "recall_at_1": share(found & (scores.rank < 1)),
        "recall_at_k": share(found & (scores.rank < top_k)),
        "recall_at_5": share(found & (scores.rank < 5)),
        "small_talk_false_recall": share((scores.talk_gate < gate) & (scores.talk_top >= threshold)),
        "questions_gated": int((~passed).sum()),
    }


def sweep(scores: Scores) -> list[dict[str, Any]]:
    """Every gate threshold × recall threshold × top_k."""
    return [
        operating_point(scores, gate, threshold, top_k)
        for top_k in TOP_KS
        for gate in GATE_THRESHOLDS
        for threshold in GATE_RECALL_THRESHOLDS
    ]


def best_point(rows: list[dict[str, Any]], top_k: int) -> dict[str, Any] | None:
    """The highest recall@k with ≤ 5 % false recalls; on ties the fewest false recalls, then the fewest
    questions gated, then the loosest gate and the highest recall threshold (the most margin to spare)."""
    allowed = [
        row for row in rows if row["top_k"] == top_k and row["small_talk_false_recall"] <= MAX_FALSE_RECALL
    ]
    return max(
        allowed,
        key=lambda row: (
            row["recall_at_k"],
            -row["small_talk_false_recall"],
            -row["questions_gated"],
            row["gate"],
            row["threshold"],
        ),
        default=None,
    )


def evaluate_gate(scores: Scores, questions: list[str]) -> dict[str, Any]:
    """The gate sweep of one strategy, its best points, and the same choice made on one half, tested on the
    other."""
    rows = sweep(scores)
    even, odd = (
        scores.part(slice(0, None, 2), slice(0, None, 2)),
        scores.part(slice(1, None, 2), slice(1, None, 2)),
    )
    best: dict[str, Any] = {}
    held_out: dict[str, Any] = {}
    for top_k in TOP_KS:
        point = best_point(rows, top_k)
        if point is not None:
            point = {
                **point,
                "questions_gated_texts": [
                    text
                    for text, score in zip(questions, scores.question_gate, strict=True)
                    if score >= point["gate"]
                ],
            }
        best[f"top_{top_k}"] = point
        chosen = best_point(sweep(even), top_k)
        held_out[f"top_{top_k}"] = (
            {
                "chosen_on_even": chosen,
                "odd": operating_point(odd, chosen["gate"], chosen["threshold"], top_k),
            }
            if chosen
            else None
        )
    return {
        "question_gate_similarity": {
            "median": round(float(np.median(scores.question_gate)), 3),
            "max": round(float(np.max(scores.question_gate)), 3),
        },
        "small_talk_gate_similarity": {
            "min": round(float(np.min(scores.talk_gate)), 3),
            "median": round(float(np.median(scores.talk_gate)), 3),
        },
        "sweep": rows,
        "best": best,
        "held_out": held_out,
    }


def through_store(
    embedder: Embedder, recall_set: RecallSet, top_k: int, min_similarity: float, small_talk_gate: float
) -> dict[str, Any]:
    """The set through a real memory block: remember every memory, then ask every question and small talk."""
    now = time.time()
    recall = RecallSettings(
        window_size=0, top_k=top_k, min_similarity=min_similarity, small_talk_gate=small_talk_gate
    )
    with tempfile.TemporaryDirectory(prefix="recall-quality-") as folder:
        system = MemorySystem.open(
            MemoryStoreSettings(path=Path(folder), recall=recall), clock=lambda: now, embedder=embedder
        )
        try:
            block = system.block("recall-quality")
            set_ids = {}
            for memory in recall_set.memories:
                stored = block.remember(memory.question, memory.answer)
                assert stored is not None
                set_ids[stored.id] = memory.id
            recalled = [
                [set_ids[memory.id] for memory in block.context(text).recollections]
                for text in recall_set.questions
            ]
            talk = [len(block.context(text).recollections) > 0 for text in recall_set.small_talk]
        finally:
            system.close()
    wanted = [recall_set.memories[target].id for target in recall_set.targets]
    found = [target in ids for target, ids in zip(wanted, recalled, strict=True)]
    return {
        "top_k": top_k,
        "min_similarity": min_similarity,
        "small_talk_gate": small_talk_gate,
        "recall_at_1": share([ids[:1] == [target] for target, ids in zip(wanted, recalled, strict=True)]),
        "recall_at_k": share(found),
        "small_talk_false_recall": share(talk),
        "missed": [text for text, hit in zip(recall_set.questions, found, strict=True) if not hit],
        "small_talk_recalling": [text for text, hit in zip(recall_set.small_talk, talk, strict=True) if hit],
    }


def print_strategy(name: str, figures: dict[str, Any]) -> None:
    """One strategy's figures and threshold table."""
    target, talk = figures["target_similarity"], figures["small_talk_top_similarity"]
    print(
        f"\n{name}: recall@1 {figures['recall_at_1']:.3f}, recall@5 {figures['recall_at_5']:.3f}\n"
        f"target similarity min {target['min']:.3f}, median {target['median']:.3f}, max {target['max']:.3f}; "
        f"top small-talk similarity median {talk['median']:.3f}, max {talk['max']:.3f}"
    )
    print(f"{'threshold':>9} {'recall@3≥T':>11} {'recall@5≥T':>11} {'small talk':>11}")
    for row in figures["thresholds"]:
        print(
            f"{row['threshold']:>9.3f} {row['recall_at_3']:>11.3f} {row['recall_at_5']:>11.3f} "
            f"{row['small_talk_false_recall']:>11.3f}"
        )


def print_gate(name: str, figures: dict[str, Any]) -> None:
    """One strategy's gate sweep: recall@5 and false recalls per gate and recall threshold, then the best."""
    question, talk = figures["question_gate_similarity"], figures["small_talk_gate_similarity"]
    print(
        f"\n{name} with the small-talk gate ({len(PROTOTYPES)} prototypes): nearest-prototype similarity of "
        f"questions median {question['median']:.3f}, max {question['max']:.3f}; of small talk min "
        f"{talk['min']:.3f}, median {talk['median']:.3f}"
    )
    print("recall@5≥T not gated / small-talk false recall, top 5; rows: gate G, columns: recall threshold T")
    print(f"{'G':>5} " + " ".join(f"{threshold:>11.3f}" for threshold in GATE_RECALL_THRESHOLDS))
    cells = {(row["gate"], row["threshold"]): row for row in figures["sweep"] if row["top_k"] == 5}
    for gate in GATE_THRESHOLDS:
        print(
            f"{gate:>5.3f} "
            + " ".join(
                f"{cells[gate, t]['recall_at_5']:>5.3f}/{cells[gate, t]['small_talk_false_recall']:<5.3f}"
                for t in GATE_RECALL_THRESHOLDS
            )
        )
    for top_k in TOP_KS:
        best, held = figures["best"][f"top_{top_k}"], figures["held_out"][f"top_{top_k}"]
        if best is None:
            print(f"top {top_k}: no operating point with ≤ {MAX_FALSE_RECALL:.0%} false recalls")
            continue
        print(
            f"best, top {top_k}: G {best['gate']:.3f}, T {best['threshold']:.3f}: recall@1 "
            f"{best['recall_at_1']:.3f}, recall@{top_k} {best['recall_at_k']:.3f}, "
            + (f"recall@5 {best['recall_at_5']:.3f}, " if top_k != 5 else "")
            + f"small-talk false recall {best['small_talk_false_recall']:.3f}, "
            f"questions gated {best['questions_gated']}"
            + "".join(f"\n    gated: {text}" for text in best["questions_gated_texts"])
        )
        if held:
            chosen, odd = held["chosen_on_even"], held["odd"]
            print(
                f"  chosen on the even half: G {chosen['gate']:.3f}, T {chosen['threshold']:.3f} (even: "
                f"recall@{top_k} {chosen['recall_at_k']:.3f}, false recall "
                f"{chosen['small_talk_false_recall']:.3f}); on the odd half: recall@1 "
                f"{odd['recall_at_1']:.3f}, "
                f"recall@{top_k} {odd['recall_at_k']:.3f}, small-talk false recall "
                f"{odd['small_talk_false_recall']:.3f}, questions gated {odd['questions_gated']}"
            )


def span(thresholds: list[float]) -> str:
    """The lowest and highest of `thresholds`, or "none"."""
    return f"{thresholds[0]:.3f}–{thresholds[-1]:.3f}" if thresholds else "none"


def print_summary(strategies: dict[str, dict[str, Any]], store: dict[str, Any]) -> None:
    """The best operating point per strategy, the thresholds meeting both targets, and the store's figures."""
    print(
        f"\nbest operating point: highest recall@5≥T with small-talk false recall ≤ {MAX_FALSE_RECALL:.0%}; "
        f"thresholds where recall@k≥T ≥ {MIN_RECALL:.0%} too"
    )
    print(
        f"{'strategy':>9} {'threshold':>9} {'recall@3':>9} {'recall@5':>9} {'small talk':>11} "
        f"{'meets, top 3':>13} {'meets, top 5':>13}"
    )
    for name, figures in strategies.items():
        best, meeting = figures["best"], figures["meeting_targets"]
        point = (
            f"{best['threshold']:>9.3f} {best['recall_at_3']:>9.3f} {best['recall_at_5']:>9.3f} "
            f"{best['small_talk_false_recall']:>11.3f}"
            if best
            else f"{'none':>9} {'':>9} {'':>9} {'':>11}"
        )
        print(f"{name:>9} {point} {span(meeting['top_3']):>13} {span(meeting['top_5']):>13}")
    print(
        f"\nthrough a memory block (top_k {store['top_k']}, min_similarity {store['min_similarity']}, "
        f"small_talk_gate {store['small_talk_gate']}): "
        f"recall@1 {store['recall_at_1']:.3f}, recall@{store['top_k']} {store['recall_at_k']:.3f}, "
        f"small-talk false recall {store['small_talk_false_recall']:.3f}"
    )


def main() -> int:
    """Measure, print, write the result; with --check, 1 when the store run misses the targets."""
    defaults = RecallSettings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--top-k", type=int, default=defaults.top_k, help="recall.top_k of the store run")
    parser.add_argument(
        "--min-similarity",
        type=float,
        default=defaults.min_similarity,
        help="recall.min_similarity of the store run",
    )
    parser.add_argument(
        "--small-talk-gate",
        type=float,
        default=defaults.small_talk_gate,
        help="recall.small_talk_gate of the store run (1.0 = off)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "recall_quality.json")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless the store run meets the recall targets"
    )
    args = parser.parse_args()
    recall_set = load_set(HERE / "data" / "recall_set.json")
    embedder = SentenceTransformerEmbedder()
    by_strategy = similarities(embedder, recall_set)
    strategies = {
        name: evaluate(asked, small_talk, recall_set.targets)
        for name, (asked, small_talk) in by_strategy.items()
    }
    gated = evaluate_gates(embedder, recall_set, by_strategy)
    store = through_store(embedder, recall_set, args.top_k, args.min_similarity, args.small_talk_gate)
    for name, figures in strategies.items():
        print_strategy(name, figures)
    for name, figures in gated.items():
        print_gate(name, figures)
    print_summary(strategies, store)
    write_result(
        args.output,
        {
            "benchmark": "recall_quality",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "set": {
                "memories": len(recall_set.memories),
                "questions": len(recall_set.questions),
                "small_talk": len(recall_set.small_talk),
            },
            "strategies": strategies,
            "small_talk_gate": {"prototypes": len(PROTOTYPES), "strategies": gated},
            "store_with_defaults": store,
        },
    )
    if args.check and (
        store["recall_at_k"] < MIN_RECALL or store["small_talk_false_recall"] > MAX_FALSE_RECALL
    ):
        print(
            f"recall check FAILED: through the store (top_k {args.top_k}, min_similarity "
            f"{args.min_similarity}, small_talk_gate {args.small_talk_gate}) {store['recall_at_k']:.1%} of "
            f"questions recalled their memory (need "
            f"≥ {MIN_RECALL:.0%}) and {store['small_talk_false_recall']:.1%} of small talk recalled "
            f"something (need ≤ {MAX_FALSE_RECALL:.0%})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
