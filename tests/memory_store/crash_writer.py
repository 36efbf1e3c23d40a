"""A writer of memories for the crash test, started once; it forks one writer per round, so the slow
import of sentence-transformers happens once and each writer only loads the model (a fraction of a second).

stdin, one command a line: `<store folder> <memories to write>`. Each forked writer opens the store (as a
restarted runtime would), prints `stored <count> <ids-contiguous>` (running numbers 0..count-1, nothing
missing or extra), then for each memory prints `ack <id>` once `remember` has returned, then `done`.
The test kills writers with SIGKILL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sentence_transformers  # noqa: F401 (imported before forking: the slow part, done once)

from memory_store import MemoryStoreSettings, MemorySystem, SentenceTransformerEmbedder
from memory_store.chroma.block_records import seq_of


def write_memories(folder: Path, count: int) -> None:
    settings = MemoryStoreSettings(path=folder)
    system = MemorySystem.open(settings, embedder=SentenceTransformerEmbedder())
    block = system.block("crash")
    assert system._store is not None
    records = system._store.records("crash")  # the writer's own store: only one may open the folder
    stored = records.count()
    numbers = [seq_of(memory.id) for memory in records.latest(stored, stored)]
    print("stored", stored, numbers == list(range(stored)), flush=True)
    for number in range(stored, stored + count):
        memory = block.remember(f"question number {number}", f"answer number {number}")
        assert memory is not None and seq_of(memory.id) == number
        print("ack", number, flush=True)
    print("done", flush=True)


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        folder, count = line.split()
        child = os.fork()
        if child == 0:
            try:
                write_memories(Path(folder), int(count))
            finally:
                os._exit(0)
        print("pid", child, flush=True)
        os.waitpid(child, 0)
        print("reaped", child, flush=True)


if __name__ == "__main__":
    main()
