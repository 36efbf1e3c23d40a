"""Where the runtime's memory is, logged now and then: for finding what grows over an evening.

With `machine.memory_report_s` set, a thread logs one line every that many seconds: the resident size,
what glibc's malloc holds (in use, and free but kept: fragmentation) and has mapped directly, Python's
own allocations when tracemalloc runs (`PYTHONTRACEMALLOC=1`), with the source lines whose allocations
grew most since the first report (one interval after the start, the models loaded). Nothing of what the
bot hears or says is in it: sizes and file names only. Off by default; `bench/soak.py --memory-report`
turns it on.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import tracemalloc
from dataclasses import dataclass

import psutil

from machine.process.malloc_arenas import glibc_function

log = logging.getLogger(__name__)

_MB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


@dataclass(frozen=True)
class MallocFigures:
    """What glibc's malloc holds, MB."""

    in_use: float
    free_kept: float
    mapped: float


def malloc_figures() -> MallocFigures | None:
    """glibc's `mallinfo2` (2.33 and later) in MB; None elsewhere."""
    mallinfo2 = glibc_function("mallinfo2")
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return MallocFigures(info.uordblks / _MB, info.fordblks / _MB, info.hblkhd / _MB)


def report_line(baseline: tracemalloc.Snapshot | None) -> str:
    """One line: resident size, malloc's figures, and Python's allocations against `baseline`."""
    parts = [f"rss {psutil.Process().memory_info().rss / _MB:.1f} MB"]
    figures = malloc_figures()
    if figures is not None:
        parts.append(
            f"malloc in use {figures.in_use:.1f} MB, free kept {figures.free_kept:.1f} MB, "
            f"mapped {figures.mapped:.1f} MB"
        )
    if tracemalloc.is_tracing():
        current, _ = tracemalloc.get_traced_memory()
        parts.append(f"python {current / _MB:.1f} MB")
        if baseline is not None:
            grown = tracemalloc.take_snapshot().compare_to(baseline, "lineno")[:5]
            parts.append(
                "grew most: "
                + "; ".join(
                    f"{stat.traceback[0].filename}:{stat.traceback[0].lineno} {stat.size_diff / _MB:+.2f} MB"
                    for stat in grown
                )
            )
    return ", ".join(parts)


class MemoryReporter:
    """A daemon thread logging `report_line` every `every_s` seconds until `stop`."""

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-report", daemon=True)

    def start(self) -> MemoryReporter:
        """Start reporting; returns itself."""
        self._thread.start()
        return self

    def _run(self) -> None:
        baseline: tracemalloc.Snapshot | None = None
        while not self._stop.wait(self._every_s):
            log.info("memory: %s", report_line(baseline))
            if baseline is None and tracemalloc.is_tracing():
                baseline = tracemalloc.take_snapshot()

    def stop(self) -> None:
        """Stop reporting."""
        self._stop.set()
