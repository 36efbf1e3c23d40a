"""machine/process/malloc_arenas.py's FreeMemoryReturner: the memory malloc keeps free after a turn goes
back to the system."""

from __future__ import annotations

import os
import sys

import pytest

from machine.process.malloc_arenas import FreeMemoryReturner


def _resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim, /proc")
def test_memory_freed_between_live_blocks_goes_back_to_the_system() -> None:
    blocks = [bytearray(b"x" * 4096) for _ in range(50_000)]  # 200 MB from malloc's heap
    kept = blocks[::64]  # a few stay alive all over it: the heap cannot shrink from its top
    del blocks
    before = _resident_mb()
    FreeMemoryReturner().after_turn()
    after = _resident_mb()
    assert kept
    assert before - after > 100, (before, after)


def test_at_most_one_trim_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    returner = FreeMemoryReturner(every_s=30.0)
    trims: list[int] = []
    monkeypatch.setattr(returner, "_trim", trims.append)
    now = [0.0]
    monkeypatch.setattr("machine.process.malloc_arenas.time.monotonic", lambda: now[0])
    for now[0] in (100.0, 110.0, 131.0):
        returner.after_turn()
    assert trims == [0, 0]  # at 100 s and 131 s, not at 110 s
