"""The runtime's conversation memory: one InfiniMemory block (see `memory_store`), and its session timer.

With the embedded Chroma (`memory_store.client: persistent`) only this process may open the store, so the
runtime ends idle sessions itself: once at open, then on a plain timer (no Prefect in the voice process);
with a Chroma server a Prefect worker runs the session-expiry flow's deployment. When the runtime stops,
its block's session is forgotten (`memory_store.sessions.forget_on_exit`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from machine.ports import Exchange, MemoryContext
from memory_store import Embedder, MemoryBlock, MemoryStoreSettings, MemorySystem
from memory_store.expiry_timer import SessionExpiryTimer

log = logging.getLogger(__name__)


class BlockMemory:
    """A :class:`machine.ports.ConversationMemory` on one memory block."""

    def __init__(self, block: MemoryBlock) -> None:
        self.block = block

    @property
    def embedder(self) -> Embedder:
        """The block's embedding model."""
        return self.block.embedder

    def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
        """The block's recollections for this input and its recent window (never raises); `speaker`'s
        own recollections come first (the prompt budget drops the last ones first)."""
        found = self.block.context(user_input)
        recollections = sorted(
            found.recollections, key=lambda memory: speaker is not None and memory.speaker != speaker
        )
        return MemoryContext(
            recollections=tuple(Exchange(m.question, m.answer, m.speaker) for m in recollections),
            window=tuple(Exchange(m.question, m.answer, m.speaker) for m in found.window),
        )

    def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
        """Keep the exchange in the block, with who asked."""
        self.block.remember(question, answer, speaker=speaker)

    def touch(self) -> None:
        """Something was heard or said: the session goes on."""
        self.block.touch()

    def forget(self) -> None:
        """End the session now: every memory of the block is forgotten."""
        self.block.reset()
        log.info("memory block %s: session reset, its memories are forgotten", self.block.name)


@contextlib.contextmanager
def open_memory(settings: MemoryStoreSettings, block: str, fresh: bool = False) -> Iterator[BlockMemory]:
    """Open the memory system, hand out `block`, and keep sessions expiring while the runtime runs.

    At open, with the embedded store, every session already idle longer than `sessions.idle_timeout_s`
    (judged from the last activity the store recorded) is purged before the block is read; `fresh` then
    forgets the block's session too. At exit (the runtime stopped, Ctrl-C, SIGTERM, an exception) the
    block's session is forgotten through the same durable path as a reset, before the store closes,
    unless `sessions.forget_on_exit` is off (a SIGTERM reaches this exit through
    :class:`machine.process.stop_signals.StopSignals`).
    """
    system = MemorySystem.open(settings)
    try:
        embedded = settings.client == "persistent" and not system.degraded
        if embedded:  # with a Chroma server the session-expiry deployment does this
            system.expire_idle_sessions()
        memory = BlockMemory(system.block(block))
        if fresh:
            memory.block.reset("a fresh start was asked for")
        timer = SessionExpiryTimer(system) if embedded else None
        if timer is not None:
            timer.start()
        try:
            yield memory
        finally:
            if timer is not None:
                timer.stop()
            if settings.sessions.forget_on_exit:
                memory.block.reset("the runtime stopped; memory_store.sessions.forget_on_exit is on")
    finally:
        system.close()
