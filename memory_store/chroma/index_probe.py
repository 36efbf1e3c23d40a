"""The child process of `index_health.probe_collections`: asks each named collection for some of its own
vectors back and whether a query finds each one as its own nearest neighbour.

    python -m memory_store.chroma.index_probe STORE_FOLDER COLLECTION...

Prints `probing NAME` before and `ok NAME` or `damaged NAME WHY` after each collection, flushed, so the
parent knows which collection a crash (a segfault in a corrupt index) happened on.
"""

from __future__ import annotations

import sys

import chromadb
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

SAMPLES = 16
IDENTICAL = 1e-4
"""Cosine distance below which another memory has the same vector (the same text said twice)."""


def probe(collection: Collection) -> str | None:
    """Why the collection's vector index does not answer correctly, or None when it does."""
    count = collection.count()
    if count == 0:
        return None
    offsets = sorted({*range(max(0, count - SAMPLES // 2), count), *range(0, count, max(1, count // 8))})
    ids = [collection.get(offset=offset, limit=1, include=[])["ids"][0] for offset in offsets]
    found = collection.get(ids=ids, include=["embeddings"])
    vectors = found["embeddings"]
    if vectors is None or len(found["ids"]) != len(ids):
        return f"{len(ids) - len(found['ids'])} of {len(ids)} sampled vectors are missing"
    for id_, vector in zip(found["ids"], vectors, strict=True):
        answer = collection.query(query_embeddings=[vector], n_results=min(count, 3), include=["distances"])
        nearest, distances = answer["ids"][0], (answer["distances"] or [[1.0]])[0]
        if id_ not in nearest and not (distances and distances[0] < IDENTICAL):
            return f"a query for the vector of {id_} found {nearest}"
    return None


def main(folder: str, names: list[str]) -> None:
    """Probe each collection of the store in `folder`, reporting as it goes."""
    client = chromadb.PersistentClient(path=folder, settings=Settings(anonymized_telemetry=False))
    for name in names:
        print("probing", name, flush=True)
        try:
            why = probe(client.get_collection(name))
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
        print(*(["ok", name] if why is None else ["damaged", name, " ".join(why.split())]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
