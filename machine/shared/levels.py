"""Levels of audio: dBFS of a chunk, and the history of what the bot played (for the echo gate).

Shared by the audio devices (the sink writes what it plays) and hearing (the endpointer's levels, the echo
gate's prediction), so neither imports the other.
"""

from __future__ import annotations

import math

import numpy as np

from machine.ports import CHUNK_MS, FloatAudio

SILENCE_DBFS = -120.0
"""The level of digital silence (and the floor of every level)."""

SLOT_S = CHUNK_MS / 1000
"""The playback level history has one slot per input chunk's duration."""

_HISTORY_S = 20.0


def dbfs(samples: FloatAudio) -> float:
    """Level of a chunk in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    if samples.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


class PlaybackLevels:
    """The level of what the bot played, one slot per 32 ms, for the last 20 s (written by the sink).

    Written from the audio callback and read from the processing worker without a lock: a reader may see
    a slot a block late, which the jitter allowance absorbs."""

    def __init__(self) -> None:
        self._size = math.ceil(_HISTORY_S / SLOT_S)
        self._levels = np.full(self._size, SILENCE_DBFS, dtype=np.float64)
        self._slots = np.full(self._size, -1, dtype=np.int64)

    def record(self, at: float, level_db: float) -> None:
        """The block heard at monotonic time `at` had this level (the loudest block of a slot wins)."""
        slot = int(at // SLOT_S)
        index = slot % self._size
        if self._slots[index] != slot:
            self._slots[index] = slot
            self._levels[index] = level_db
        elif level_db > self._levels[index]:
            self._levels[index] = level_db

    def slots(self, first: int, last: int) -> np.ndarray:
        """Levels of slots `first..last` inclusive (silence where nothing was played)."""
        wanted = np.arange(first, last + 1, dtype=np.int64)
        index = wanted % self._size
        return np.where(self._slots[index] == wanted, self._levels[index], SILENCE_DBFS)
