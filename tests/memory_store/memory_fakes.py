"""Test helpers: settings on a folder, a settable clock, and a fast word-hashing embedder (a test double)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory_store import MemoryStoreSettings, MemorySystem
from memory_store.embedding import Vectors

DIMENSIONS = 384

OpenSystem = Callable[..., MemorySystem]
"""The `open_system` fixture: (embedder=None, **setting overrides) -> an open MemorySystem."""


def settings_for(store_dir: Path, **overrides: Any) -> MemoryStoreSettings:
    """Default settings on `store_dir`; nested sections given as dicts, e.g. recall={"window_size": 3}."""
    return MemoryStoreSettings(path=store_dir, **overrides)


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WordHashEmbedder:
    """Bag of words hashed into 384 dimensions: texts sharing words are similar (no model needed)."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                vectors[row, int(hashlib.sha1(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
            norm = float(np.linalg.norm(vectors[row]))
            if norm:
                vectors[row] /= norm
            else:
                vectors[row, 0] = 1.0
        return vectors
