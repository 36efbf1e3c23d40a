"""Keeping the resident memory of a long-running process flat, and its turns from paying for it.

glibc gives threads their own malloc arenas (up to eight per core). The runtime's many short-lived
threads (generation, synthesis, jobs) allocate tensors and strings of changing sizes in them, and freed
memory stays scattered over the arenas: in a 60-turn measurement the resident size grew from 2214 to
2439 MB with the default arenas, and stayed at 2173 → 2208 MB with two, at the same speed.

glibc also maps every block over its mmap threshold (at most 32 MB) afresh and unmaps it when freed, so
the next block of that size is faulted in again, page by page. Whisper's encoder (CTranslate2) allocates
its attention scores for the 30 s window, about 54 MB a layer, at every transcription: 75,000 page
faults and 339 ms a transcription on the 2-core test machine, 299 ms and none with those blocks kept
in the heap (`reuse_large_blocks`); the free-memory trim after a turn then hands back what the turn
freed, so the next transcription faults about 24,000 pages in (312 ms, against 368 ms with the trim and
glibc's default; `bench/page_faults.py`). See docs/architecture.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM_ON_FREE = 2**30
"""Top-of-heap memory malloc may keep free before it trims it on its own (1 GiB: only the explicit
trim after a turn hands memory back)."""


def glibc_function(name: str) -> Any | None:
    """The C library's function `name` (e.g. "mallopt"), or None where the library has none (musl, macOS,
    Windows: not glibc)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (call it before threads start); True when the cap is set.

    An explicit ``MALLOC_ARENA_MAX`` in the environment wins; elsewhere than glibc this does nothing."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = glibc_function("mallopt")
    if mallopt is None:
        return False
    done = bool(mallopt(_M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, done)
    return done


def reuse_large_blocks() -> bool:
    """Serve large blocks from malloc's heap instead of mapping each one afresh, and keep freed memory
    there until the explicit trim (:class:`FreeMemoryReturner`): a block freed after one turn is reused
    by the next without page faults. Call it before the models load; True when both settings took.

    An explicit ``MALLOC_MMAP_MAX_`` or ``MALLOC_TRIM_THRESHOLD_`` in the environment wins; elsewhere than
    glibc this does nothing."""
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    mallopt = glibc_function("mallopt")
    if mallopt is None:
        return False
    done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM_ON_FREE))
    log.debug("large blocks served from the heap: %s", done)
    return done


def tune_malloc() -> None:
    """What `python -m machine` sets up before its models load: two arenas
    (:func:`limit_malloc_arenas`) and large blocks reused (:func:`reuse_large_blocks`)."""
    limit_malloc_arenas()
    reuse_large_blocks()


class FreeMemoryReturner:
    """Hands the memory glibc's malloc keeps free back to the operating system (`malloc_trim(0)`) once the
    bot is quiet: call `after_turn` when a turn has ended, and the trim runs `delay_s` later on a timer
    thread (a turn that ends meanwhile moves it). A trim takes 12-28 ms with 400 MB freed between live
    blocks, under 2 ms when little was freed since the last one.

    A turn's peaks (a long prompt, a long reply, a long utterance) are freed after it, but malloc keeps
    most of that memory for later, scattered between live blocks; over the turns the kept memory grows
    with each new high-water mark. In `bench/soak.py --memory-report` the resident size grew 41 MB in
    seven minutes while malloc's memory in use stayed flat (676 → 677 MB) and its free-but-kept memory
    grew 33 MB (433 → 466 MB). A trim at the moment a turn ended still left what its last jobs freed after
    it (the voice's rest, the memory's write): the resident size sampled 2 s after each reply moved by
    ±15 MB (1,747-1,782 MB); with the trim a second later, 1,753-1,761 MB (one sample at 1,775).
    Elsewhere than glibc this does nothing."""

    def __init__(self, delay_s: float = 1.0) -> None:
        self._delay_s = delay_s
        self._trim = glibc_function("malloc_trim")
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def after_turn(self) -> None:
        """Trim `delay_s` from now (instead of when an earlier turn asked)."""
        if self._trim is None:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._delay_s, self.trim)
            self._timer.name = "free-memory"
            self._timer.daemon = True
            self._timer.start()

    def trim(self) -> None:
        """Hand the free memory back now."""
        if self._trim is None:
            return
        started = time.monotonic()
        self._trim(0)
        log.debug("free memory handed back in %.0f ms", 1000 * (time.monotonic() - started))

    def close(self) -> None:
        """Cancel a trim not yet run (the run is over)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
