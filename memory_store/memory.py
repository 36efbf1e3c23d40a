"""What InfiniMemory hands out: one remembered exchange, and the memory context of one turn."""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Memory:
    """One exchange: what a user said and what the bot answered."""

    id: str
    """Unique within its block; ids sort in the order the memories were made."""
    question: str
    answer: str
    created_at: float
    """When it was remembered, in seconds since the epoch (the memory system's clock)."""
    speaker: str | None = None
    """Who asked, where known."""

    def text(self) -> str:
        """The text that is embedded and compared with inputs on recall: what the user said (the answer
        when nothing was said). Measured on `bench/data/recall_set.json`, embedding the question alone finds
        paraphrased questions better than question and answer together (see docs/memory.md)."""
        return self.question or self.answer


@dataclass(frozen=True)
class TurnContext:
    """The memory part of one prompt: what was recalled, then the recent history."""

    recollections: tuple[Memory, ...]
    """Memories from outside the window that resemble the input, most similar first."""
    window: tuple[Memory, ...]
    """The most recent memories, oldest first; never holds a recollection."""


def capped(text: str, limit: int, what: str) -> str:
    """`text` without surrounding whitespace, cut to `limit` characters (logged when cut)."""
    text = text.strip()
    if len(text) > limit:
        logger.warning("%s of %d characters cut to %d (memory_store.max_text_chars)", what, len(text), limit)
        text = text[:limit]
    return text
