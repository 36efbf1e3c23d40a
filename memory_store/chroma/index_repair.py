"""Rebuilding a block whose vector index is damaged, from the texts Chroma keeps in its SQLite file.

The memories (ids, texts, times, speakers) are read from the damaged collection, which Chroma serves
from SQLite even when its index files are gone; they are embedded again into a new collection named
`rebuilding-<collection>`, which is marked complete once every memory is in it; then the damaged
collection is deleted and the new one takes its name. Killed at any point, the next open starts the
rebuild again (an incomplete `rebuilding-` collection is dropped) or finishes the rename (a complete one).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chromadb.errors import NotFoundError

from memory_store.chroma.block_records import (
    LAST_ACTIVITY,
    collection_configuration,
    memory_from_metadata,
    memory_metadata,
)
from memory_store.embedding import Vectors
from memory_store.memory import Memory
from memory_store.settings import HnswSettings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger(__name__)

REBUILDING_PREFIX = "rebuilding-"
COMPLETE = "rebuild_complete"
PAGE = 2000


def rebuild_collection(
    client: ClientAPI, name: str, embed: Callable[[list[Memory]], Vectors], hnsw: HnswSettings
) -> int:
    """Rebuild collection `name` from its stored texts; returns how many memories it holds."""
    started = time.monotonic()
    staging = REBUILDING_PREFIX + name
    with contextlib.suppress(NotFoundError):
        client.delete_collection(staging)  # an earlier rebuild that did not finish
    damaged = client.get_collection(name)
    activity = (damaged.metadata or {}).get(LAST_ACTIVITY, time.time())
    fresh = client.create_collection(
        staging,
        embedding_function=None,
        metadata={LAST_ACTIVITY: activity, COMPLETE: False},
        configuration=collection_configuration(hnsw),  # type: ignore[arg-type]
    )
    copied = 0
    while page := _memories(damaged, copied):
        fresh.add(
            ids=[memory.id for memory in page],
            embeddings=embed(page),
            metadatas=[memory_metadata(memory) for memory in page],
        )
        copied += len(page)
    fresh.modify(metadata={LAST_ACTIVITY: activity, COMPLETE: True})
    finish_rebuild(client, name)
    logger.warning(
        "memory store: rebuilt the damaged vector index of %s from its %d stored memories in %.1f s",
        name,
        copied,
        time.monotonic() - started,
    )
    return copied


def finish_rebuild(client: ClientAPI, name: str) -> bool:
    """Put a complete rebuild of `name` in its place; False when there is none (an incomplete one is
    dropped, so the caller rebuilds again)."""
    try:
        staged = client.get_collection(REBUILDING_PREFIX + name)
    except NotFoundError:
        return False
    metadata = dict(staged.metadata or {})
    if metadata.pop(COMPLETE, False) is not True:
        client.delete_collection(staged.name)
        return False
    with contextlib.suppress(NotFoundError):
        client.delete_collection(name)
    staged.modify(name=name, metadata=metadata)
    return True


def _memories(collection: Collection, offset: int) -> list[Memory]:
    found = collection.get(offset=offset, limit=PAGE, include=["metadatas"])
    rows = zip(found["ids"], found["metadatas"] or [], strict=True)
    return [memory_from_metadata(id_, meta) for id_, meta in rows]
