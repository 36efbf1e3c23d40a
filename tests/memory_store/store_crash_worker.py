"""The worker of the store crash tests, started once; it forks a child per command, so the slow imports
happen once and every child opens the store as a restarted runtime would. Memories are embedded with the
`NumberEmbedder` (the crash windows are Chroma's, not the model's).

stdin, one command a line; the worker answers `pid <child>` and, when the child ends, `reaped <child>
<exit status or -signal>`; the child prints its own lines in between:

- `build FOLDER COUNT`: bulk-loads block `crash` with COUNT memories in batches of 1,000 (Chroma writes
  the index at every 1,000th), then closes cleanly; prints `built COUNT`.
- `write FOLDER COUNT`: remembers COUNT more memories in `crash`, printing `remembering <n>` before and
  `ack <n>` after each (n = the memory's running number).
- `forget FOLDER`: remembers 30 canary memories in block `secret`, prints `forgetting`, resets `secret`
  and prints `forgotten`.
- `verify FOLDER`: opens the store, then prints `verified <json>`: the running numbers stored in `crash`
  from FIRST on (the verify command's third word), whether recall finds memory RECALL (the fourth), and
  whether a new memory can be remembered; closes cleanly.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import chromadb  # noqa: F401 (imported before forking: the slow part, done once)
import numpy as np

from memory_store import Memory, MemoryStoreSettings, MemorySystem
from memory_store.chroma.block_records import memory_id, seq_of
from memory_store.embedding import Vectors, embed_memories

CANARY = "The canary's secret is marmalade-47 under the blue bridge"


class NumberEmbedder:
    """A random unit vector seeded by the last number in the text: "question number 7" and the memory
    "question number 7 / answer number 7" get the same vector, any other number an unrelated one."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        seeds = [int(([0, *re.findall(r"\d+", text)])[-1]) for text in texts]
        rows = np.stack([np.random.default_rng(seed).normal(size=384) for seed in seeds])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def open_system(folder: str) -> MemorySystem:
    return MemorySystem.open(MemoryStoreSettings(path=Path(folder)), embedder=NumberEmbedder())


def build(folder: str, count: int) -> None:
    system, now = open_system(folder), time.time()
    assert system._store is not None
    records, embedder = system._store.records("crash"), NumberEmbedder()
    for first in range(0, count, 1000):
        batch = [
            Memory(memory_id(n), f"question number {n}", f"answer number {n}", now)
            for n in range(first, min(count, first + 1000))
        ]
        records.add(batch, embed_memories(embedder, batch), now)
    records.write_activity(now)
    system.close()
    print("built", count, flush=True)


def write(folder: str, count: int) -> None:
    system = open_system(folder)
    assert system._store is not None
    start = system._store.records("crash").count()
    block = system.block("crash")
    for number in range(start, start + count):
        print("remembering", number, flush=True)
        memory = block.remember(f"question number {number}", f"answer number {number}")
        assert memory is not None and seq_of(memory.id) == number
        print("ack", number, flush=True)


def forget(folder: str) -> None:
    block = open_system(folder).block("secret")
    for turn in range(30):
        block.remember(f"{CANARY} ({turn})", f"I will keep the canary's secret {turn}")
    print("forgetting", flush=True)
    block.reset()
    print("forgotten", flush=True)


def verify(folder: str, first: int, recall: int) -> None:
    system = open_system(folder)
    assert system._store is not None
    records = system._store.records("crash")
    count = records.count()
    numbers = sorted(seq_of(memory.id) for memory in records.latest(count, count - first))
    block = system.block("crash")
    recalled = [seq_of(m.id) for m in block.context(f"question number {recall}").recollections]
    added = block.remember(f"question number {count}", f"answer number {count}")
    system.close()
    result = {"count": count, "numbers": numbers, "recalled": recalled, "remembered": added is not None}
    print("verified", json.dumps(result), flush=True)


def main() -> None:
    commands = {"build": build, "write": write, "forget": forget, "verify": verify}
    print("ready", flush=True)
    for line in sys.stdin:
        name, folder, *numbers = line.split()
        child = os.fork()
        if child == 0:
            code = 1
            try:
                commands[name](folder, *map(int, numbers))  # type: ignore[operator]
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        print("pid", child, flush=True)
        _, status = os.waitpid(child, 0)
        print("reaped", child, os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    main()
