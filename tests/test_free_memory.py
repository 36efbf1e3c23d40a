"""machine/process/malloc_arenas.py's FreeMemoryReturner: the memory malloc keeps free after a turn goes
back to the system."""

from __future__ import annotations

import os
import sys
import threading
import time

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
    FreeMemoryReturner().trim()
    after = _resident_mb()
    assert kept
    assert before - after > 100, (before, after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_the_trim_waits_for_the_bot_to_be_quiet_and_a_later_turn_moves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    returner = FreeMemoryReturner(delay_s=0.3)
    trims: list[float] = []
    done = threading.Event()

    def trimmed(pad: int) -> None:
        trims.append(time.monotonic())
        done.set()

    monkeypatch.setattr(returner, "_trim", trimmed)
    returner.after_turn()
    time.sleep(0.1)
    assert trims == [], "not at the turn's end: what its last jobs free comes after it"
    second = time.monotonic()
    returner.after_turn()  # another turn ends: one trim, after it
    assert done.wait(timeout=10)
    time.sleep(0.5)
    assert len(trims) == 1
    assert trims[0] - second >= 0.29, "the later turn moved the trim"


def test_a_closed_returner_trims_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    returner = FreeMemoryReturner(delay_s=0.2)
    trims: list[int] = []
    monkeypatch.setattr(returner, "_trim", trims.append)
    returner.after_turn()
    returner.close()
    time.sleep(0.4)
    assert trims == []
