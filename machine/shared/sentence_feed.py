"""Handing a reply's sentences to its prepared speech, on the thread that makes them."""

from __future__ import annotations

from collections.abc import Iterable

from machine.ports import PreparedSpeech

__all__ = ["feed"]


def feed(speech: PreparedSpeech, sentences: Iterable[str]) -> None:
    """Add `sentences` to `speech` until they run out (then finish it) or it takes no more; either way
    they are closed after (a reply's generator stops generating)."""
    iterator = iter(sentences)
    try:
        for sentence in iterator:
            if not speech.add(sentence):
                return
        speech.finish()
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
