"""The runtime's conversation memory: one InfiniMemory block (see `memory_store`), and its session timer.

With the embedded Chroma (`memory_store.client: persistent`) only this process may open the store, so the
session-expiry flow runs here on a timer; with a Chroma server a Prefect worker runs its deployment.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from flows.session_expiry import SessionExpiryTimer
from machine.ports import Exchange, MemoryContext
from memory_store import MemoryBlock, MemoryStoreSettings, MemorySystem

log = logging.getLogger(__name__)


class BlockMemory:
    """A :class:`machine.ports.ConversationMemory` on one memory block."""

    def __init__(self, block: MemoryBlock) -> None:
        self.block = block

    def context(self, user_input: str) -> MemoryContext:
        """The block's recollections for this input and its recent window (never raises)."""
        found = self.block.context(user_input)
        return MemoryContext(
            recollections=tuple(Exchange(m.question, m.answer) for m in found.recollections),
            window=tuple(Exchange(m.question, m.answer) for m in found.window),
        )

    def remember(self, question: str, answer: str) -> None:
        """Keep the exchange in the block."""
        self.block.remember(question, answer)

    def touch(self) -> None:
        """Something was heard or said: the session goes on."""
        self.block.touch()

    def forget(self) -> None:
        """End the session now: every memory of the block is forgotten."""
        self.block.reset()
        log.info("memory block %s: session reset, its memories are forgotten", self.block.name)


@contextlib.contextmanager
def open_memory(settings: MemoryStoreSettings, block: str) -> Iterator[BlockMemory]:
    """Open the memory system, hand out `block`, and keep sessions expiring while the runtime runs."""
    system = MemorySystem.open(settings)
    try:
        memory = BlockMemory(system.block(block))
        timer = (
            SessionExpiryTimer(system) if settings.client == "persistent" and not system.degraded else None
        )
        if timer is not None:
            timer.start()
        try:
            yield memory
        finally:
            if timer is not None:
                timer.stop()
    finally:
        system.close()
