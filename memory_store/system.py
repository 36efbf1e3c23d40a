"""The memory system of one process: the store, the embedding model, and the blocks bots ask for."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from memory_store.block import MemoryBlock
from memory_store.chroma.chroma_store import ChromaStore, check_block_name
from memory_store.embedding import Embedder, SentenceTransformerEmbedder, embed_memories
from memory_store.errors import MemoryStoreError, StoreInUseError
from memory_store.settings import MemoryStoreSettings
from memory_store.small_talk import SmallTalkGate

logger = logging.getLogger(__name__)


class MemorySystem:
    """Opened once per process; hands out memory blocks by name and ends idle sessions."""

    def __init__(
        self,
        settings: MemoryStoreSettings,
        store: ChromaStore | None,
        embedder: Embedder,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._small_talk = SmallTalkGate(embedder, settings.recall.small_talk_gate)
        self._blocks: dict[str, MemoryBlock] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: MemoryStoreSettings,
        clock: Callable[[], float] = time.time,
        embedder: Embedder | None = None,
    ) -> MemorySystem:
        """Open the store as configured; the embedding model loads when the first block is asked for.

        A store that cannot be used raises `MemoryStoreError`, or with `on_store_error: degrade` is
        logged and the system runs without it: windows in memory only, no recall, nothing kept. An
        embedded store that another process owns always raises `StoreInUseError`. A damaged block is
        rebuilt from its stored texts first (loading the embedding model for it).
        """
        chosen = embedder or SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_device)
        try:
            store: ChromaStore | None = ChromaStore.open(settings, partial(embed_memories, chosen))
        except StoreInUseError:
            raise
        except MemoryStoreError as exc:
            if settings.on_store_error == "fail":
                raise
            logger.error("%s\nDEGRADED: memories are kept in memory only and nothing is recalled", exc)
            store = None
        return cls(settings, store, chosen, clock)

    @property
    def degraded(self) -> bool:
        """True when the store could not be opened and memories live in memory only."""
        return self._store is None

    def block(self, name: str) -> MemoryBlock:
        """The memory block called `name` (the same object each time); a new one starts empty."""
        check_block_name(name)
        with self._lock:
            if name not in self._blocks:
                if self._store is not None and not self._blocks:
                    self._small_talk.load()  # the model and the gate's phrases now, not in the first turn
                self._blocks[name] = MemoryBlock(
                    name, self._store, self._embedder, self.settings, self._clock, self._small_talk
                )
            return self._blocks[name]

    def expire_idle_sessions(self) -> list[str]:
        """Forget every block in the store whose session has been idle too long; returns their names."""
        now = self._clock()
        idle_timeout = self.settings.sessions.idle_timeout_s
        with self._lock:
            ended = [name for name, block in self._blocks.items() if block.end_if_idle(now)]
            if self._store is not None:
                others = [
                    name
                    for name, last in self._store.last_activity_by_block().items()
                    if name not in self._blocks and (last is None or now - last > idle_timeout)
                ]
                self._store.forget(others)
                ended += others
        if ended:
            logger.info("ended idle sessions of memory blocks: %s", ", ".join(sorted(ended)))
        return sorted(ended)

    def close(self) -> None:
        """Write pending activity times and release the store."""
        with self._lock:
            for block in self._blocks.values():
                block.flush_activity()
            self._blocks.clear()
            if self._store is not None:
                self._store.close()
