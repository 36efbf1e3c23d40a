"""InfiniMemory benchmark: memories written per second, query-embedding time, recall latency p50/p95 with
1k/10k/100k memories in a block, recall@5 against exact brute-force cosine search, store size on disk.

    .venv/bin/python bench/memory_recall.py [--sizes 1000 10000 100000] [--queries 200]

Writes go through `MemoryBlock.remember` with the real all-MiniLM-L6-v2. The large blocks hold synthetic
384-d unit vectors (clustered, like sentence embeddings; building 100k real embeddings takes minutes),
bulk-loaded into the block's collection; recall is then timed through `MemoryBlock.context` with the
query vector handed over ready-made, so the figure excludes the query embedding, which is timed apart
(threshold and small-talk gate off: the vectors are synthetic; the gate adds one 100 x 384 product).
Prints a table and writes bench/results/memory_recall.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memory_store import Memory, MemoryStoreSettings, MemorySystem, SentenceTransformerEmbedder
from memory_store.chroma.block_records import memory_id, seq_of
from memory_store.chroma.chroma_store import ChromaStore
from memory_store.embedding import Vectors

RESULTS = Path(__file__).resolve().parent / "results" / "memory_recall.json"
DIMENSIONS, CLUSTERS, BATCH, WINDOW, TOP_K = 384, 1000, 5000, 6, 5


class QueryTable:
    """An embedder that looks the query vector up by its text (no model: isolates the store's time)."""

    def __init__(self) -> None:
        self.vectors: dict[str, Vectors] = {}

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self.vectors.get(text, np.ones(DIMENSIONS, dtype=np.float32)) for text in texts])


def unit(rows: np.ndarray) -> Vectors:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
    }


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def bench_writes(root: Path, count: int) -> dict[str, float]:
    embedder = SentenceTransformerEmbedder()
    system = MemorySystem.open(MemoryStoreSettings(path=root / "writes"), embedder=embedder)
    block = system.block("bench")
    started = time.perf_counter()
    for number in range(count):
        block.remember(f"What did you think about topic {number}?", f"Topic {number} was interesting to me.")
    writes = count / (time.perf_counter() - started)
    timings = []
    for number in range(100):
        began = time.perf_counter()
        embedder.embed([f"Do you remember what we said about topic {number}?"])
        timings.append(time.perf_counter() - began)
    system.close()
    return {
        "memories_written_per_s": round(writes, 1),
        **{f"query_embedding_{k}": v for k, v in percentiles_ms(timings).items()},
    }


def bench_recall(root: Path, size: int, queries: int, rng: np.random.Generator) -> dict[str, float]:
    folder = root / f"recall-{size}"
    settings = MemoryStoreSettings(
        path=folder,
        recall={"window_size": WINDOW, "top_k": TOP_K, "min_similarity": -1.0, "small_talk_gate": 1.0},
    )
    centers = rng.normal(size=(CLUSTERS, DIMENSIONS))
    vectors = unit(centers[rng.integers(0, CLUSTERS, size)] + 0.8 * rng.normal(size=(size, DIMENSIONS)))
    store, now = ChromaStore.open(settings, embed=lambda memories: vectors[:0]), time.time()
    records = store.records("bench")
    started = time.perf_counter()
    for first in range(0, size, BATCH):
        batch = [
            Memory(memory_id(n), f"synthetic question {n}", f"synthetic answer {n}", now)
            for n in range(first, min(size, first + BATCH))
        ]
        records.add(batch, vectors[first : first + len(batch)], now)
    load_rate = size / (time.perf_counter() - started)
    records.write_activity(now)
    store.close()

    table = QueryTable()
    system = MemorySystem.open(settings, embedder=table)
    block = system.block("bench")
    probes = unit(centers[rng.integers(0, CLUSTERS, queries)] + 0.8 * rng.normal(size=(queries, DIMENSIONS)))
    outside_window = vectors[: size - WINDOW]
    timings, found = [], 0
    for number, probe in enumerate(probes):
        text = f"query {number}"
        table.vectors[text] = probe
        began = time.perf_counter()
        context = block.context(text)
        timings.append(time.perf_counter() - began)
        exact = {int(i) for i in np.argsort(-(outside_window @ probe))[:TOP_K]}
        found += len(exact & {seq_of(memory.id) for memory in context.recollections})
    system.close()
    return {
        "memories": size,
        "bulk_load_per_s": round(load_rate, 1),
        **{f"recall_{k}": v for k, v in percentiles_ms(timings).items()},
        "recall_at_5": round(found / (TOP_K * queries), 4),
        "store_bytes": folder_bytes(folder),
        "bytes_per_memory": round(folder_bytes(folder) / size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writes", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    root = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    try:
        writes = bench_writes(root, args.writes)
        recall = [bench_recall(root, size, args.queries, rng) for size in args.sizes]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"writes (remember, real embeddings): {writes['memories_written_per_s']} memories/s")
    print(
        f"query embedding (all-MiniLM-L6-v2, CPU): p50 {writes['query_embedding_p50_ms']} ms, "
        f"p95 {writes['query_embedding_p95_ms']} ms"
    )
    print(
        f"{'memories':>9} {'recall p50':>11} {'recall p95':>11} {'recall@5':>9} "
        f"{'store MB':>9} {'B/memory':>9}"
    )
    for row in recall:
        print(
            f"{row['memories']:>9} {row['recall_p50_ms']:>8.2f} ms {row['recall_p95_ms']:>8.2f} ms "
            f"{row['recall_at_5']:>9.4f} {row['store_bytes'] / 1e6:>9.1f} {row['bytes_per_memory']:>9}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": platform.platform(), "writes": writes, "recall": recall}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
