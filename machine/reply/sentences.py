"""Cutting a stream of generated text into speakable sentences, and knowing when to stop.

The first piece may be released early at a clause boundary (a comma, semicolon or dash after a few
words), or, when a long first sentence has none, after a few more words at a word boundary, so the voice
can start while the rest of the sentence is still being generated. Generation
should stop at a stop string (a dialogue turn the model starts to invent) or once enough sentences are
out; :attr:`SentenceSplitter.done` says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

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


class SentenceSplitter:
    """Feed text pieces; get back complete sentences (and, first, possibly a clause)."""

    def __init__(
        self,
        max_sentences: int,
        stop_strings: Iterable[str] = (),
        first_clause_words: int = 0,
        first_piece_max_words: int = 0,
    ) -> None:
        self._max = max_sentences
        self._stops = tuple(s for s in stop_strings if s)
        self._first_clause_words = first_clause_words
        self._first_piece_max_words = first_piece_max_words
        self._buffer = ""
        self._released = 0
        self._sentences = 0
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
            if end is None and self._released == 0 and self._first_clause_words:
                end, whole = self._clause_end(), False
            if end is None and self._released == 0 and self._first_piece_max_words:
                end, whole = self._word_cap_end(), False
            if end is None:
                break
            piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
            if piece:
                out.append(piece)
                self._released += 1
                self._sentences += whole
        return out

    def _flush_rest(self) -> list[str]:
        piece, self._buffer = self._buffer.strip(), ""
        if not piece or self._sentences >= self._max:
            return []
        self._released += 1
        self._sentences += 1
        return [piece]

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

    def _clause_end(self) -> int | None:
        for match in _CLAUSE_END.finditer(self._buffer):
            if len(self._buffer[: match.start()].split()) >= self._first_clause_words:
                return match.end()
        return None
