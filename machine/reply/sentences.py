"""Cutting a stream of generated text into speakable sentences, and knowing when to stop.

The first piece may be released early at a clause boundary (a comma, semicolon or dash after a few
words), or, when a long first sentence has none, after a few more words at a word boundary, so the voice
can start while the rest of the sentence is still being generated. After it, whole sentences, unless the
voice is about to run dry (:class:`SpeechPace`: what was released is estimated to be spoken within
`lead_s`): then the text so far is released at its last clause boundary, or, in a sentence already begun,
at its last whole word, so a model that writes a long sentence slower than the voice speaks does not leave
the listener in silence mid-sentence. Generation should stop at a stop string (a dialogue turn the model
starts to invent) or once enough sentences are out; :attr:`SentenceSplitter.done` says so.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CLOSERS = "\"')]”’»"  # may follow the full stop that ends a sentence
_SENTENCE_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*[^\w\s]*(?=\s)|\n\s*\n")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)|\s-\s")
_WORD = re.compile(r"\S+")
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "e.g.", "i.e.", "etc.", "prof.", "jr.", "sr."}
)


_ASIDE = re.compile(r"\([^()]*\)|\*[^*]*\*|\[[^\[\]]*\]")
_EMOTICON = re.compile(r"(?<!\w)[:;=8][-']?[)(DPp3/\\|]+(?!\w)")
_UNSPEAKABLE = re.compile(r"[^\w\s.,!?;:'\"’‘“”()\[\]*%&@#/+=<>$€£-]")


def speakable(text: str) -> str:
    """The text as it should be spoken: without stage directions like "(laughs)" or "*waves*", emoji,
    emoticons or broken characters."""
    text = _ASIDE.sub(" ", text)
    text = _EMOTICON.sub(" ", text)
    text = _UNSPEAKABLE.sub(" ", text)
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)
    return " ".join(text.split())


def default_stop_strings(bot_name: str) -> tuple[str, ...]:
    """Markers of a dialogue turn the model has started to invent, or of a role tag leaking out."""
    return (
        "User:",
        "user:",
        "Assistant:",
        "assistant:",
        "<|im_start|>",
        "<|im_end|>",
        "\nUser",
        f"\n{bot_name}:",
    )


_MIN_PACED_WORDS = 3
"""A piece released because the voice runs dry has at least this many words (fewer sound like a stutter,
and the reply checks judge them on too little)."""


@dataclass(frozen=True)
class SpeechPace:
    """How fast the voice says what is released, so more is released before it runs dry."""

    seconds_per_word: float
    """The voice's pace, on the fast side: an estimate that runs out early only releases a piece early."""
    lead_s: float
    """Release the text so far when what was released is estimated to be spoken within this many seconds
    (time to synthesise the next piece, with a margin)."""
    clock: Callable[[], float] = time.monotonic


class SentenceSplitter:
    """Feed text pieces; get back complete sentences (and, first, possibly a clause; later, a clause or
    the words so far when the voice would otherwise run dry, given a `pace`)."""

    def __init__(
        self,
        max_sentences: int,
        stop_strings: Iterable[str] = (),
        first_clause_words: int = 0,
        first_piece_max_words: int = 0,
        pace: SpeechPace | None = None,
    ) -> None:
        self._max = max_sentences
        self._stops = tuple(s for s in stop_strings if s)
        self._first_clause_words = first_clause_words
        self._first_piece_max_words = first_piece_max_words
        self._pace = pace
        self._buffer = ""
        self._released = 0
        self._sentences = 0
        self._mid_sentence = False  # the last piece released ended inside a sentence
        self._spoken_by = 0.0  # when the voice is estimated to have said everything released
        self.stopped_at: str | None = None
        """The stop string that ended generation, if one did."""

    @property
    def done(self) -> bool:
        """True once no more text is wanted: a stop string was seen or the sentence limit was reached."""
        return self.stopped_at is not None or self._sentences >= self._max

    def feed(self, piece: str) -> list[str]:
        """Add a piece of generated text; returns the pieces of speech it completes."""
        if self.done:
            return []
        self._buffer += piece
        stop_at = self._find_stop()
        if stop_at is not None:
            self._buffer = self._buffer[:stop_at]
            return self._flush_sentences() + self._flush_rest()
        return self._flush_sentences()

    def finish(self, cut: bool = False) -> list[str]:
        """The generation ended: whatever text is left is the last piece. When it was `cut` at the token
        limit, that text stops mid-sentence ("... on her social media: she has"), so it is dropped unless
        nothing was released yet (then a cut reply is better than none)."""
        if self.done:
            return []
        if cut and self._released:
            dropped, self._buffer = self._buffer.strip(), ""
            if dropped:
                log.info(
                    "the reply was cut at the token limit: its unfinished last %d words are not said",
                    len(dropped.split()),
                )
            return []
        return self._flush_rest()

    def _find_stop(self) -> int | None:
        positions = [i for i in (self._buffer.find(stop) for stop in self._stops) if i >= 0]
        if not positions:
            return None
        first = min(positions)
        self.stopped_at = next(s for s in self._stops if self._buffer.find(s) == first)
        return first

    def _flush_sentences(self) -> list[str]:
        out: list[str] = []
        while self._sentences < self._max:
            end, whole = self._sentence_end(), True
            if end is None:
                end, whole = self._early_end(), False
            if end is None:
                break
            piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
            if piece:
                out.append(self._release(piece, whole))
        return out

    def _flush_rest(self) -> list[str]:
        piece, self._buffer = self._buffer.strip(), ""
        if not piece or self._sentences >= self._max:
            return []
        return [self._release(piece, whole=True)]

    def _release(self, piece: str, whole: bool) -> str:
        self._released += 1
        self._sentences += whole
        self._mid_sentence = not whole
        if self._pace is not None:
            now = self._pace.clock()
            self._spoken_by = max(self._spoken_by, now) + len(piece.split()) * self._pace.seconds_per_word
        return piece

    def _early_end(self) -> int | None:
        """Where to release part of a sentence: the first piece (a clause, or a long sentence's first
        words), or, when the voice is about to run dry, the last clause (mid-sentence, the last word)."""
        if self._released == 0:
            clause = self._clause_end(self._first_clause_words) if self._first_clause_words else None
            if clause is None and self._first_piece_max_words:
                return self._word_cap_end()
            return clause
        if self._pace is None or self._pace.clock() + self._pace.lead_s < self._spoken_by:
            return None
        clause = self._clause_end(_MIN_PACED_WORDS, last=True)
        if clause is None and self._mid_sentence:
            return self._last_word_end()
        return clause

    def _sentence_end(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            words = self._buffer[: match.end()].split()
            if words and words[-1].lower() in _ABBREVIATIONS:
                continue
            return match.end()
        return None

    def _word_cap_end(self) -> int | None:
        """The end of the `first_piece_max_words`-th word, once the word after it has begun."""
        words = list(_WORD.finditer(self._buffer))
        if len(words) <= self._first_piece_max_words:
            return None
        return words[self._first_piece_max_words - 1].end()

    def _last_word_end(self) -> int | None:
        """The end of the last word that is surely whole (the word after it has begun), when the text
        before it has enough words for a paced piece."""
        words = list(_WORD.finditer(self._buffer))
        if len(words) <= _MIN_PACED_WORDS:
            return None
        return words[-2].end()

    def _clause_end(self, min_words: int, last: bool = False) -> int | None:
        """The end of the first (or `last`) clause boundary with at least `min_words` words before it."""
        ends = [
            match.end()
            for match in _CLAUSE_END.finditer(self._buffer)
            if len(self._buffer[: match.start()].split()) >= min_words
        ]
        if not ends:
            return None
        return ends[-1] if last else ends[0]
