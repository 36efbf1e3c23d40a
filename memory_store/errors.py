"""The one error InfiniMemory raises: what went wrong with the store and how to fix it."""

from __future__ import annotations


class MemoryStoreError(RuntimeError):
    """The memory store cannot be opened or written; the message says why and what to do."""


class StoreInUseError(MemoryStoreError):
    """Another process owns the embedded store folder (never degraded: it is a configuration error)."""
