"""Words a transcript invents: insertions at a segment's edges and hallucinated repeats.

Used by bench/transcription_edges.py and bench/conversation_quality.py. Filler words ("uh", "hm") are
dropped from both sides first: whisper may or may not write a filler that was said, and neither is an error.
"""

from __future__ import annotations

import from_tests

speech = from_tests.load("speech")

FILLERS = frozenset({"uh", "um", "hm", "hmm", "mm", "mhm", "ah", "er", "erm", "uhm"})
REPEATS = 3
"""A word or phrase said this many times in a row, where the script says it fewer times, is hallucinated."""


def plain_words(text: str) -> list[str]:
    return [w for w in speech.words(text) if w not in FILLERS]


def alignment(ref: list[str], hyp: list[str]) -> list[str]:
    """The edit operations turning ref into hyp, in order: "=" match, "s" substitution, "d", "i"."""
    rows, cols = len(ref) + 1, len(hyp) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(
                cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            )
    ops: list[str] = []
    i, j = len(ref), len(hyp)
    while i or j:
        # Ties go to a match, then an insertion (so words around the script count as inserted there).
        if i and j and ref[i - 1] == hyp[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            ops.append("=")
            i, j = i - 1, j - 1
        elif j and cost[i][j] == cost[i][j - 1] + 1:
            ops.append("i")
            j -= 1
        elif i and j and cost[i][j] == cost[i - 1][j - 1] + 1:
            ops.append("s")
            i, j = i - 1, j - 1
        else:
            ops.append("d")
            i -= 1
    return ops[::-1]


def edge_insertions(reference: str, hypothesis: str) -> int:
    """Words the transcript has before the first or after the last word of the script."""
    ops = alignment(plain_words(reference), plain_words(hypothesis))
    if not any(op != "i" for op in ops):
        return len(ops)

    def leading(sequence: list[str]) -> int:
        count = 0
        for op in sequence:
            if op != "i":
                break
            count += 1
        return count

    return leading(ops) + leading(ops[::-1])


def longest_run(words: list[str]) -> dict[tuple[str, ...], int]:
    """Per phrase of 1-4 words, the most times it occurs back to back."""
    runs: dict[tuple[str, ...], int] = {}
    for size in range(1, 5):
        for start in range(len(words) - size + 1):
            phrase = tuple(words[start : start + size])
            count, at = 1, start + size
            while tuple(words[at : at + size]) == phrase:
                count, at = count + 1, at + size
            runs[phrase] = max(runs.get(phrase, 0), count)
    return runs


def hallucinated_repeat(reference: str, hypothesis: str) -> bool:
    """The transcript repeats a word or phrase `REPEATS` or more times in a row that the script does not."""
    said = longest_run(plain_words(reference))
    return any(
        count >= REPEATS and said.get(phrase, 0) < REPEATS
        for phrase, count in longest_run(plain_words(hypothesis)).items()
    )


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Word errors over all (reference, hypothesis) pairs / reference words, fillers ignored."""
    edits = sum(speech.word_edits(plain_words(r), plain_words(h)) for r, h in pairs)
    return edits / max(1, sum(len(plain_words(r)) for r, _ in pairs))
