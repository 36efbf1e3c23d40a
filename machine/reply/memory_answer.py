"""Answering a question about the user from what they told the bot.

The bundled 135M model rarely answers "What is the name of my cat?" from a note that says "Their cat is
called Pickles", however the note is worded (bench/conversation_quality.py). So when the user asks about
themselves and one thing they said earlier answers it, the reply is that thing said back to them ("Your
cat is called Pickles and she is orange."); with `memory_answers: answer_then_model` the model goes on
from there.

Which question is "about the user": a question (a question mark, or a question word first) that is not a
request, advice or an opinion asked of the bot, and does not ask about the bot; it names the user (I, my,
me, we, ...) or is close enough to one thing they said. Which statement answers it: the clause (what they
said, cut at sentence ends and commas; questions and bits that state nothing, such as "Hi Celeste",
dropped) most similar to the question by sentence embedding, at or above a threshold picked on
hand-labelled questions (bench/memory_answer.py, bench/data/memory_answer_labels.json). A question for
their name is answered from the name they gave ("I'm Robin"), which an embedding hardly carries.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from machine.ports import TextEmbedder
from machine.reply.checks import opening_of, words
from machine.reply.retelling import second_person
from machine.shared.names import name_said

log = logging.getLogger(__name__)

Subject = Literal["user", "bot", "other", "not a question"]

_QUESTION_START = re.compile(
    r"^(what|which|who|whom|whose|where|when|why|how|do|does|did|is|are|am|was|were|can|could|have|has)\b"
)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|our|ours|us)\b")
_SECOND_PERSON = re.compile(r"\b(you|you're|your|yours|yourself)\b")
_MEMORY_WORDS = re.compile(r"\b(remember|remind|recall|know)\b")
_NOT_RECALL = re.compile(
    r"\b(should|shall|recommend|suggest|teach|think|tell me a|tell me about)\b"  # advice, requests
    r"|\b(can|could|would|will) you\b"  # asking the bot to do something
    r"|\b(do|did|would|have) you (like|love|enjoy|prefer|want|play|speak|mind|ever|have)\b"  # its opinion
)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_CLAUSE_BREAK = re.compile(r"[.!;,]+")
_ASKS_NAME = re.compile(r"\b(my name|who am i|who i am|what am i called|what i'm called|remember me)\b")
_MIN_CLAUSE_WORDS = 3
_CACHE = 512


def _plain(text: str) -> str:
    """`text` lower-cased, with typographic apostrophes as plain ones, for the patterns here."""
    return text.lower().replace("’", "'")


def subject_of(question: str) -> Subject:
    """Whom `question` asks about: the user ("What is my job?"), the bot ("What is your job?"), something
    else ("What is the name of the biggest goldfish?"), or it is no question to answer from memory (a
    statement, a request, advice, the bot's opinion)."""
    text = _plain(question).strip()
    if not words(text):
        return "not a question"
    remembering = bool(_MEMORY_WORDS.search(text))
    asks = text.endswith("?") or bool(_QUESTION_START.match(text)) or remembering
    if not asks or (_NOT_RECALL.search(text) and not remembering):
        return "not a question"
    if _FIRST_PERSON.search(text):
        return "user"
    if _SECOND_PERSON.search(text) and not remembering:
        return "bot"
    return "other"


def clauses(statement: str) -> list[str]:
    """The parts of `statement` that can be said back alone: cut at sentence ends, semicolons and commas,
    without questions (they tell nothing) and the short bits that state nothing ("Hi Celeste", "Well";
    "I'm Robin" states their name)."""
    told = (sentence for sentence in _SENTENCE.findall(statement) if not sentence.rstrip().endswith("?"))
    parts = (" ".join(part.split()) for sentence in told for part in _CLAUSE_BREAK.split(sentence))
    return [part for part in parts if _states_something(part)]


def _states_something(part: str) -> bool:
    """Three words or more, or two about the speaker ("I'm Robin"; "Hi Celeste" states nothing)."""
    said = words(part)
    return len(said) >= _MIN_CLAUSE_WORDS or (len(said) == 2 and bool(_FIRST_PERSON.search(_plain(part))))


@dataclass(frozen=True)
class Recalled:
    """The clause of an earlier statement that answers a question, and how close it was."""

    clause: str
    similarity: float
    statement: str
    """What the user said, whole, that the clause comes from."""


class MemoryAnswer:
    """Finds what the user told the bot that answers their question, and says it back to them."""

    def __init__(
        self, embedder: TextEmbedder, about_user: float, about_other: float, bot_name: str = ""
    ) -> None:
        self._embedder = embedder
        self._bot_name = bot_name
        self._thresholds = {"user": about_user, "other": about_other}
        self._vectors: dict[str, np.ndarray] = {}

    def recall(self, question: str, told: Sequence[str]) -> Recalled | None:
        """The clause of `told` (the user's earlier statements) that answers `question`, or None: not a
        question about the user, nothing told, or nothing close enough. Their name is found by what they
        said ("I'm Robin", "my name is Robin"), not by similarity: a name carries little meaning for an
        embedding ("Do you remember my name?" and "I'm Robin" are 0.28 apart)."""
        subject = subject_of(question)
        if subject == "user" and _ASKS_NAME.search(_plain(question)):
            named = [(name_said(statement, self._bot_name), statement) for statement in told]
            given = [(name, statement) for name, statement in named if name]
            if given:
                name, statement = given[-1]
                return Recalled(f"my name is {name}", 1.0, statement)
        threshold = self._thresholds.get(subject)
        sources = {c: statement for statement in told for c in clauses(statement)}  # a clause: its last
        candidates = list(sources)
        if threshold is None or not candidates:
            return None
        vectors = self._embedded([question, *candidates])
        similarities = vectors[1:] @ vectors[0]
        best = int(np.argmax(similarities))
        if similarities[best] < threshold:
            return None
        return Recalled(candidates[best], float(similarities[best]), sources[candidates[best]])

    def answer(
        self, question: str, told: Sequence[str], earlier: Sequence[str], opening_words: int
    ) -> str | None:
        """The opening of the reply to `question` when what the user told answers it: that clause said back
        to them, framed so it does not open like one of the bot's `earlier` replies (its first
        `opening_words` words)."""
        recalled = self.recall(question, told)
        if recalled is None:
            return None
        fact = _mid_sentence(second_person(recalled.clause).rstrip(" ,;:"), told)
        openings = {opening_of(reply, opening_words) for reply in earlier} if opening_words else set()
        framed = [f"{fact[:1].upper()}{fact[1:]}.", f"You told me {fact}.", f"I remember, {fact}."]
        if _MEMORY_WORDS.search(_plain(question)):
            framed.insert(0, f"Of course, {fact}.")
        fresh = [line for line in framed if opening_of(line, opening_words) not in openings]
        log.info("answering from memory (similarity %.2f)", recalled.similarity)
        return (fresh or framed)[0]

    def _embedded(self, texts: list[str]) -> np.ndarray:
        """Embeddings of `texts`, the user's clauses kept so each is embedded once a conversation."""
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            if len(self._vectors) + len(missing) > _CACHE:
                self._vectors.clear()
            self._vectors.update(zip(missing, self._embedder.embed(missing), strict=True))
        return np.stack([self._vectors[t] for t in texts])


def _mid_sentence(fact: str, told: Sequence[str]) -> str:
    """`fact` to follow other words: its first letter lower-cased, unless its first word is a name (one
    the user's words capitalise after the start of a sentence)."""
    first = fact.split(maxsplit=1)[0] if fact else ""
    names = {
        word
        for statement in told
        for word in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+", statement.strip())
    }
    return fact if first in names else fact[:1].lower() + fact[1:]
