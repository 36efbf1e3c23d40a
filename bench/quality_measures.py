"""What bench/conversation_quality.py measures in a conversation, as plain functions of text.

Word error rate after a light normalisation (case, punctuation, British and American spelling, small
numbers), which turns of a script the runtime's turns belong to, and the reply measures: a fact
recalled, an opening said before, the user's words echoed, and role confusion.

Role confusion is a reply that claims one of the user's facts as the bot's own ("Yes, my cat is orange.")
or, since issue #25, one that narrates the conversation instead of answering in it ("The user will say,
'Good night,' ...", "The person you are talking about is a friend named Noah."), judged by the same
function as the reply check that strikes it (`machine.reply.checks.narrates`). Before, only the claims
were counted: the five saved runs in bench/results scored 0-1.6 %, and re-scored with narration (their
replies were said before the check existed) 4.7-28.8 % (the shipped run's 0 % became 19.4 %, 13 of 67).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import from_tests

from machine.reply.checks import narrates, opening_of, repeats_words, words

_speech = from_tests.load("speech")

_SPELLING = {
    "favorite": "favourite",
    "color": "colour",
    "colors": "colours",
    "traveled": "travelled",
    "traveling": "travelling",
    "okay": "ok",
    "goodnight": "good night",
    "vrchat": "vr chat",
}
_NUMBER_WORDS = """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty"""
_NUMBERS = {str(n): word for n, word in enumerate(_NUMBER_WORDS.split())}


def normalised(text: str) -> list[str]:
    """The words of `text` for scoring: lower case, no punctuation, one spelling, small numbers as words."""
    out: list[str] = []
    for word in words(text.replace("-", " ")):
        spoken = _NUMBERS.get(word, word)
        out.extend(_SPELLING.get(spoken, spoken).split())
    return out


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference) after normalisation."""
    ref = normalised(reference)
    return _speech.word_edits(ref, normalised(hypothesis)), len(ref)


def wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Word error rate over (reference, hypothesis) pairs, pooled over all words."""
    errors = [word_errors(ref, hyp) for ref, hyp in pairs]
    total = sum(n for _, n in errors)
    return sum(e for e, _ in errors) / total if total else 0.0


def align(script: Sequence[str], heard: Sequence[str]) -> list[list[int]]:
    """Which of the runtime's turns (by their transcripts, in order) belong to which scripted line.

    Turns keep their order; a line may get none (not heard) or several (cut in two). Each turn goes to the
    line it shares most words with, among the lines from the previous turn's line on."""
    owners: list[list[int]] = [[] for _ in script]
    line = 0
    for index, transcript in enumerate(heard):
        said = set(normalised(transcript))
        scores: list[float] = [len(said & set(normalised(text))) for text in script[line:]]
        if owners[line]:  # on a tie, a line not heard yet rather than a second turn for this one
            scores[0] -= 0.5
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))
        if scores[best] > 0 or not owners[line]:
            line += best
        owners[line].append(index)
    return owners


def recalls(reply: str, expected: Sequence[str]) -> bool:
    """The reply names the fact (any of the expected words, as a word or the start of one)."""
    said = normalised(reply)
    return any(any(word.startswith(e) for word in said) for e in (w.lower() for w in expected))


def repeats_opening(reply: str, earlier: Sequence[str], n: int = 3) -> bool:
    """The reply's first `n` words are those of an earlier reply."""
    first = opening_of(reply, n)
    return bool(first) and any(opening_of(before, n) == first for before in earlier)


def echoes_user(reply: str, user_lines: Sequence[str], n: int = 6) -> bool:
    """The reply says `n` or more words in a row that a user said."""
    return any(repeats_words(reply, line, n) for line in user_lines)


def mark_echoes(rows: list[dict[str, object]]) -> None:
    """Per reply: `echo`, it says six or more words in a row of the input it answers back (parroting);
    `restates_earlier`, it says six or more words of something the user said earlier in the conversation
    (an answer from memory does that: "You told me your cat is called Pickles ...")."""
    earlier: dict[str, list[str]] = {}
    for row in rows:
        said = earlier.setdefault(str(row["conversation"]), [])
        if row["reply"]:
            row["echo"] = echoes_user(str(row["reply"]), [str(row["say"])])
            row["restates_earlier"] = echoes_user(str(row["reply"]), said)
        said.append(str(row["say"]))


def claims(reply: str, phrases: Sequence[str]) -> bool:
    """The reply says one of the user's facts as the bot's own (one of `phrases`, in the first person)."""
    said = " ".join(normalised(reply))
    return any(f" {' '.join(normalised(p))} " in f" {said} " for p in phrases)


def confuses_roles(reply: str, stated: Sequence[str]) -> bool:
    """Role confusion: the reply claims one of the facts the user `stated` as the bot's own, or it
    narrates the conversation (talks about the user instead of to them, as the reply check judges it)."""
    return claims(reply, stated) or bool(narrates(reply))


def mark_role_confusion(
    rows: list[dict[str, object]], stated: Mapping[tuple[str, str], Sequence[str]]
) -> None:
    """Per reply: `role_confusion` (see :func:`confuses_roles`), against the facts the user stated before
    it in the same conversation (`stated`: per (conversation, line said), the facts that line states), and
    `narration`, the words that narrate ("" when none)."""
    told: dict[str, list[str]] = {}
    for row in rows:
        before = told.setdefault(str(row["conversation"]), [])
        if row["reply"]:
            row["role_confusion"] = confuses_roles(str(row["reply"]), before)
            row["narration"] = narrates(str(row["reply"]))
        before.extend(stated.get((str(row["conversation"]), str(row["say"])), ()))


def calibrate(similarities: Sequence[float], on_topic: Sequence[bool]) -> tuple[float, float]:
    """The similarity threshold that best separates hand-labelled on-topic pairs from off-topic ones:
    (threshold, accuracy on the labels). Ties go to the lowest threshold."""
    candidates = sorted({*similarities, 0.0})
    best = (0.0, -1.0)
    for low, high in itertools.pairwise([*candidates, candidates[-1] + 1e-6]):
        threshold = (low + high) / 2
        right = sum((s >= threshold) == label for s, label in zip(similarities, on_topic, strict=True))
        accuracy = right / len(similarities)
        if accuracy > best[1]:
            best = (threshold, accuracy)
    return best
