"""InfiniMemory: memory blocks on Chroma, a recent window, recall by similarity, and sessions that forget.

system = MemorySystem.open(load_settings())
block = system.block("celeste")
context = block.context(user_input)      # .recollections, .window
block.remember(user_input, reply)
"""

from __future__ import annotations

from memory_store.block import MemoryBlock
from memory_store.embedding import Embedder, SentenceTransformerEmbedder
from memory_store.errors import MemoryStoreError, StoreInUseError
from memory_store.memory import Memory, TurnContext
from memory_store.settings import MemoryStoreSettings, load_settings
from memory_store.system import MemorySystem

__all__ = [
    "Embedder",
    "Memory",
    "MemoryBlock",
    "MemoryStoreError",
    "MemoryStoreSettings",
    "MemorySystem",
    "SentenceTransformerEmbedder",
    "StoreInUseError",
    "TurnContext",
    "load_settings",
]
