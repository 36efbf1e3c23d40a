"""One memory block's Chroma collection: memories with their vectors, and the block's last activity.

A memory's id is the block's running number, zero-padded, and a random suffix (`0000000041-3fa2c9`): ids
sort in the order the memories were made, and two writers that reach the same number (two clients of one
block on a Chroma server) cannot overwrite or drop each other's memory. The number is also kept as `seq`
in the metadata, so the last X are fetched by a `where` on it (once, when a block is loaded). Question and
answer are kept in the metadata; no Chroma document is stored, so Chroma's full-text index
holds no copy. The last-activity time lives in the collection metadata, where other processes (the
session-expiry flow through a Chroma server) read it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chromadb.errors import NotFoundError

from memory_store.memory import Memory
from memory_store.settings import HnswSettings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Where

    from memory_store.embedding import Vectors

LAST_ACTIVITY = "last_activity"


class BlockGoneError(Exception):
    """The block's collection was deleted by another process (its session ended there)."""


def memory_id(seq: int) -> str:
    """A new id for the block's `seq`-th memory (counting from 0); unique even when two writers use `seq`."""
    return f"{seq:010d}-{secrets.token_hex(3)}"


def seq_of(id_: str) -> int:
    """The running number in a memory id."""
    return int(id_[:10])


def collection_configuration(hnsw: HnswSettings) -> dict[str, Any]:
    """Chroma's configuration of a block's collection: cosine space and the configured HNSW index."""
    return {
        "hnsw": {
            "space": "cosine",
            "ef_search": hnsw.ef_search,
            "ef_construction": hnsw.ef_construction,
            "max_neighbors": hnsw.max_neighbors,
        }
    }


class BlockRecords:
    """Reads and writes one block's collection; the collection is created on the first write."""

    def __init__(
        self, client: ClientAPI, collection_name: str, hnsw: HnswSettings, writing: threading.RLock
    ) -> None:
        self._client = client
        self._name = collection_name
        self._hnsw = hnsw
        self._writing = writing
        """Held for every write, so purging the store's files never races a write."""
        self._collection: Collection | None = None

    @staticmethod
    def activity_of(collection: Collection) -> float | None:
        """The last activity written to `collection`, if any."""
        value = (collection.metadata or {}).get(LAST_ACTIVITY)
        return float(value) if isinstance(value, int | float) else None

    def _existing(self) -> Collection | None:
        if self._collection is None:
            try:
                self._collection = self._client.get_collection(self._name)
            except NotFoundError:
                return None
        return self._collection

    def _created(self, now: float) -> Collection:
        if self._collection is None:
            with self._writing:
                self._collection = self._create(now)
        return self._collection

    def _create(self, now: float) -> Collection:
        return self._client.get_or_create_collection(
            self._name,
            embedding_function=None,
            metadata={LAST_ACTIVITY: now},
            configuration=collection_configuration(self._hnsw),  # type: ignore[arg-type]
        )

    def detach(self) -> None:
        """Forget the cached collection handle (after the collection was deleted)."""
        self._collection = None

    def last_activity(self) -> float | None:
        """The stored last activity, read fresh from the store; None when the block is not stored."""
        self._collection = None
        collection = self._existing()
        return None if collection is None else self.activity_of(collection)

    def write_activity(self, now: float) -> None:
        """Store `now` as the block's last activity."""
        collection = self._created(now)
        with self._writing:
            collection.modify(metadata={LAST_ACTIVITY: now})

    def count(self) -> int:
        """How many memories the block holds."""
        collection = self._existing()
        return 0 if collection is None else collection.count()

    def add(self, memories: Sequence[Memory], vectors: Vectors, now: float) -> None:
        """Store `memories` with their vectors; returns once they are durable in the store."""
        collection = self._created(now)
        try:
            with self._writing:
                collection.add(
                    ids=[memory.id for memory in memories],
                    embeddings=vectors,
                    metadatas=[memory_metadata(memory) for memory in memories],
                )
        except NotFoundError:
            self._collection = None
            raise BlockGoneError(self._name) from None

    def latest(self, count: int, size: int) -> list[Memory]:
        """The last `size` of the block's `count` memories, oldest first."""
        collection = self._existing()
        if collection is None or size == 0 or count == 0:
            return []
        first: Where = {"seq": {"$gte": count - size}}  # type: ignore[dict-item]
        found = collection.get(where=first, include=["metadatas"])
        # Stores written before ids had a suffix (and `seq`) hold ids that are the bare number.
        unsuffixed = collection.get(
            ids=[f"{seq:010d}" for seq in range(count - size, count)], include=["metadatas"]
        )
        memories = [
            memory_from_metadata(id_, meta)
            for answer in (found, unsuffixed)
            for id_, meta in zip(answer["ids"], answer["metadatas"] or [], strict=True)
        ]
        return sorted(memories, key=lambda memory: (seq_of(memory.id), memory.created_at))[-size:]

    def nearest(self, vector: Vectors, n: int) -> list[tuple[Memory, float]]:
        """The `n` memories most similar to `vector`, most similar first, with their cosine similarity."""
        collection = self._existing()
        if collection is None or n == 0:
            return []
        try:
            found = collection.query(
                query_embeddings=vector[None, :], n_results=n, include=["metadatas", "distances"]
            )
        except NotFoundError:
            self._collection = None
            raise BlockGoneError(self._name) from None
        ids = found["ids"][0]
        metadatas = (found["metadatas"] or [[]])[0]
        distances = (found["distances"] or [[]])[0]
        return [
            (memory_from_metadata(id_, meta), 1.0 - distance)
            for id_, meta, distance in zip(ids, metadatas, distances, strict=True)
        ]


def memory_metadata(memory: Memory) -> dict[str, str | float | int]:
    """What Chroma keeps of a memory beside its vector."""
    fields: dict[str, str | float | int] = {
        "seq": seq_of(memory.id),
        "question": memory.question,
        "answer": memory.answer,
        "created_at": memory.created_at,
    }
    if memory.speaker is not None:
        fields["speaker"] = memory.speaker
    return fields


def memory_from_metadata(id_: str, metadata: Mapping[str, Any]) -> Memory:
    """The memory stored under `id_` with `metadata`."""
    speaker = metadata.get("speaker")
    return Memory(
        id=id_,
        question=str(metadata["question"]),
        answer=str(metadata["answer"]),
        created_at=float(metadata["created_at"]),
        speaker=None if speaker is None else str(speaker),
    )
