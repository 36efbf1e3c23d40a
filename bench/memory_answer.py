"""How well the answer from memory (machine/reply/memory_answer.py) finds what a user told the bot, on
hand-labelled questions; picks its two similarity thresholds (issue #15).

    .venv/bin/python bench/memory_answer.py [--check]

bench/data/memory_answer_labels.json holds six users' statements and 77 questions, each labelled with the
statement that answers it or none (a question about the bot, a request, advice, a fact never told). For
every question the answerer's choice is computed once without a threshold (whom the question is about, the
most similar clause, its similarity); then, per kind of question ("user": it names the user; "other": it
names nobody), each threshold counts right answers (the labelled statement), wrong answers (another
statement, or any answer where none was labelled) and misses. The threshold chosen maximises right − 2 ×
wrong (a wrong fact said with confidence is worse than the model's own reply) and is printed beside the
shipped one (`ChatModelSettings`). Writes bench/results/memory_answer.json; `--check` exits 1 when, at the
shipped thresholds, wrong answers exceed 5 % of the questions or fewer than 80 % of the answerable ones
are answered right.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from turn_latency import machine_description, write_result

from machine.reply.memory_answer import MemoryAnswer, subject_of
from machine.settings import ChatModelSettings
from memory_store import SentenceTransformerEmbedder

HERE = Path(__file__).resolve().parent
THRESHOLDS = [round(0.25 + 0.025 * step, 3) for step in range(21)]  # 0.25 .. 0.75
MAX_WRONG, MIN_RIGHT = 0.05, 0.80


@dataclass(frozen=True)
class Choice:
    """What the answerer picked for one question, before any threshold."""

    ask: str
    subject: str
    label: int | None
    picked: int | None
    """The statement holding the most similar clause (None: not a question to answer from memory)."""
    similarity: float


def choices(embedder: SentenceTransformerEmbedder) -> list[Choice]:
    """Every labelled question with the answerer's unthresholded pick."""
    labels = json.loads((HERE / "data" / "memory_answer_labels.json").read_text(encoding="utf-8"))
    answerer = MemoryAnswer(embedder, about_user=-1.0, about_other=-1.0)
    found = []
    for profile in labels["profiles"]:
        told: list[str] = profile["told"]
        for question in profile["questions"]:
            recalled = answerer.recall(question["ask"], told)
            picked = None
            if recalled is not None:
                picked = told.index(recalled.statement)
            found.append(
                Choice(
                    question["ask"],
                    subject_of(question["ask"]),
                    question["answer"],
                    picked,
                    recalled.similarity if recalled else 0.0,
                )
            )
    return found


def score(found: list[Choice], thresholds: dict[str, float]) -> dict[str, int]:
    """Right answers, wrong answers and misses at the given per-subject thresholds."""
    right = wrong = missed = 0
    for choice in found:
        threshold = thresholds.get(choice.subject)
        answered = choice.picked is not None and threshold is not None and choice.similarity >= threshold
        if answered and choice.picked == choice.label:
            right += 1
        elif answered:
            wrong += 1
        elif choice.label is not None:
            missed += 1
    return {"right": right, "wrong": wrong, "missed": missed}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 unless the shipped thresholds pass")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "memory_answer.json")
    args = parser.parse_args()

    found = choices(SentenceTransformerEmbedder())
    shipped = ChatModelSettings()
    answerable = sum(choice.label is not None for choice in found)
    print(f"{len(found)} questions, {answerable} answerable from what the user told\n")
    print("| subject | questions | answerable | threshold | right | wrong | missed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    table = []
    best: dict[str, float] = {}
    for subject in ("user", "other"):
        mine = [choice for choice in found if choice.subject == subject]
        rows = [(t, score(mine, {subject: t})) for t in THRESHOLDS]
        best[subject] = max(rows, key=lambda row: (row[1]["right"] - 2 * row[1]["wrong"], row[0]))[0]
        for threshold, counts in rows:
            table.append({"subject": subject, "threshold": threshold, **counts})
            print(
                f"| {subject} | {len(mine)} | {sum(c.label is not None for c in mine)} | {threshold:.3f} | "
                f"{counts['right']} | {counts['wrong']} | {counts['missed']} |"
            )
    ignored = [choice for choice in found if choice.subject in ("bot", "not a question")]
    print(
        f"\nnot answered from memory (about the bot, or no question to recall): {len(ignored)}, "
        f"of them answerable: {sum(c.label is not None for c in ignored)}"
    )
    at_shipped = score(
        found, {"user": shipped.memory_answer_about_user, "other": shipped.memory_answer_about_other}
    )
    at_best = score(found, best)
    print(f"chosen here: user {best['user']:.3f}, other {best['other']:.3f} → {at_best}")
    print(
        f"shipped: user {shipped.memory_answer_about_user:.3f}, other {shipped.memory_answer_about_other:.3f}"
        f" → {at_shipped}"
    )
    for choice in found:
        shipped_threshold = {
            "user": shipped.memory_answer_about_user,
            "other": shipped.memory_answer_about_other,
        }.get(choice.subject)
        answered = (
            choice.picked is not None
            and shipped_threshold is not None
            and choice.similarity >= shipped_threshold
        )
        if (answered and choice.picked != choice.label) or (not answered and choice.label is not None):
            what = "wrong" if answered else "missed"
            print(f"  {what}: {choice.ask!r} ({choice.subject}, {choice.similarity:.2f})")
    write_result(
        args.output,
        {
            "machine": machine_description(),
            "questions": len(found),
            "answerable": answerable,
            "table": table,
            "chosen": best,
            "at_chosen": at_best,
            "shipped": {"user": shipped.memory_answer_about_user, "other": shipped.memory_answer_about_other},
            "at_shipped": at_shipped,
            "choices": [choice.__dict__ for choice in found],
        },
    )
    ok = at_shipped["wrong"] <= MAX_WRONG * len(found) and at_shipped["right"] >= MIN_RIGHT * answerable
    if args.check and not ok:
        print(
            f"FAILED: more than {MAX_WRONG:.0%} wrong or fewer than {MIN_RIGHT:.0%} of the answerable right"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
