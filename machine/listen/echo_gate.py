"""Telling the bot's own echo from a new voice, chunk by chunk, whatever the bot is doing.

The output sink writes the level of every block it plays, stamped with the time it reaches the device,
into :class:`PlaybackLevels` (one slot per 32 ms). For each input chunk, :class:`EchoGate` predicts the
loudest echo the input could hear now: the loudest playback level one echo delay ago (± a little jitter)
plus the echo path's gain. A chunk louder than that by `margin_db` is a new voice; anything quieter is
treated as the bot's echo, and the endpointer hears silence instead.

The delay and the gain are learned from what the input hears while the bot plays: the input's level
follows the playback's, one echo delay later, when it carries an echo. For every candidate delay up to
`max_delay_ms` the two levels are correlated; the best delay, when it correlates well, is the echo's, and
the low end (10th percentile) of the input-minus-playback levels there is its gain (anything else heard,
a user or noise, only adds level). When nothing correlates, the input carries no echo: a digital cable that
is silent while the bot speaks (separate virtual cables) or a room whose noise ignores the bot, so a user at
any level is heard. A 1 s loopback teaches a 1 s delay, so its late echo is recognised. Until
`max_delay_ms` + 0.8 s of playback has been heard (once per run), the gate cannot know and assumes the
worst: any delay up to the maximum and a gain of 0 dB (the echo as loud as the playback); what is heard
meanwhile waits to be judged (see :mod:`machine.listen.hearing`).

This is a level test, not an echo canceller: over a loud, direct echo path a user must be louder than the
bot's echo by the margin to be heard while it speaks.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from machine.listen.endpointing import CHUNK_MS, SILENCE_DBFS, dbfs
from machine.ports import AudioChunk

log = logging.getLogger(__name__)

SLOT_S = CHUNK_MS / 1000
"""The playback level history has one slot per input chunk's duration."""

_HISTORY_S = 20.0
_JITTER_SLOTS = 2
"""Echo arrives within ± this many slots of the learned delay (device and scheduling jitter)."""
_LOUD_DB = -50.0
"""Playback at least this loud teaches the gate something about the echo path."""
_LOUD_RANGE_DB = 20.0
"""Only playback within this much of the loudest is used to learn the gain."""
_LEARN_FROM = 24
"""Loud playback chunks needed before the learned delay and gain are trusted (about 0.8 s)."""
_LEARN_WINDOW = 400
"""The most recent observations (about 13 s) the estimate is made from."""
_LEARN_EVERY = 8
_LOW = 10.0
_ECHO_MATCH = 0.5
"""The correlation between playback and input levels above which the input carries an echo."""
_FLOOR_DB = -100.0


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


@dataclass(frozen=True)
class EchoPath:
    """What the gate believes about the echo: its delay (in 32 ms slots) and its gain in dB."""

    delay_slots: int
    gain_db: float
    learned: bool


class EchoGate:
    """Decides, per input chunk, whether it could be the bot's echo; learns the echo path as it goes."""

    def __init__(self, levels: PlaybackLevels, margin_db: float, max_delay_ms: int) -> None:
        self._levels = levels
        self._margin = margin_db
        self._max_delay = math.ceil(max_delay_ms / CHUNK_MS)
        self._observed: deque[tuple[int, float]] = deque(maxlen=_LEARN_WINDOW)
        self._since_estimate = 0
        self.path = EchoPath(self._max_delay, 0.0, learned=False)

    def expected_echo_db(self, slot: int) -> float:
        """The loudest echo the input could carry at `slot`, by what is believed about the path."""
        if self.path.learned:  # around the learned delay
            centre = slot - self.path.delay_slots
            first, last = centre - _JITTER_SLOTS, centre + _JITTER_SLOTS
        else:  # any delay up to the longest
            first, last = slot - self._max_delay - _JITTER_SLOTS, slot
        played = float(self._levels.slots(first, last).max())
        return played + self.path.gain_db if played > SILENCE_DBFS else SILENCE_DBFS

    def echo_possible(self, chunk: AudioChunk) -> bool:
        """Whether the bot played anything the chunk could be an echo of (by the learned delay, or by any
        delay up to the longest while the path is not known)."""
        return self.expected_echo_db(int(chunk.arrived_at // SLOT_S)) > SILENCE_DBFS

    def is_new_voice(self, chunk: AudioChunk) -> bool:
        """Learn from the chunk, then judge it (see :meth:`observe` and :meth:`judge`)."""
        self.observe(chunk)
        return self.judge(chunk)

    def observe(self, chunk: AudioChunk) -> None:
        """Learn from what the input hears while the bot plays."""
        self._observe(int(chunk.arrived_at // SLOT_S), dbfs(chunk.samples))

    def judge(self, chunk: AudioChunk) -> bool:
        """True when the chunk stands above the echo the bot could be making now (or nothing is playing);
        False when it could be the bot's own voice coming back."""
        expected = self.expected_echo_db(int(chunk.arrived_at // SLOT_S))
        return expected <= SILENCE_DBFS or dbfs(chunk.samples) >= expected + self._margin

    def _observe(self, slot: int, level: float) -> None:
        if float(self._levels.slots(slot - self._max_delay - _JITTER_SLOTS, slot).max()) < _LOUD_DB:
            return  # nothing loud played within reach: nothing to learn
        self._observed.append((slot, level))
        self._since_estimate += 1
        enough = _LEARN_FROM + self._max_delay  # an echo as late as the longest delay has been heard
        if self._since_estimate >= _LEARN_EVERY and len(self._observed) >= enough:
            self._since_estimate = 0
            path, self.path = self.path, self._estimate()
            if _differs(path, self.path):
                log.info("echo path: %s", _describe(self.path))

    def _estimate(self) -> EchoPath:
        slots = np.array([slot for slot, _ in self._observed], dtype=np.int64)
        heard = np.maximum(np.array([level for _, level in self._observed]), _FLOOR_DB)
        first = int(slots.min()) - self._max_delay
        played = np.maximum(self._levels.slots(first, int(slots.max())), _FLOOR_DB)
        best: tuple[float, EchoPath] | None = None
        for delay in range(self._max_delay + 1):
            reference = played[slots - delay - first]
            loud = reference >= max(_LOUD_DB, float(reference.max()) - _LOUD_RANGE_DB)
            if loud.sum() < _LEARN_FROM or np.ptp(heard[loud]) == 0:
                continue
            # an echo follows the playback; a user or the room's noise do not
            match = float(np.corrcoef(heard[loud], reference[loud])[0, 1])
            if best is None or match > best[0]:
                # whatever else is heard only adds level: the echo is the low end of the gains
                gain = float(np.percentile(heard[loud] - reference[loud], _LOW))
                best = (match, EchoPath(delay, gain, learned=True))
        if best is None or best[0] < _ECHO_MATCH:
            return EchoPath(0, _FLOOR_DB, learned=True)  # the input does not follow the playback: no echo
        return best[1]


def _differs(before: EchoPath, after: EchoPath) -> bool:
    return (
        before.learned != after.learned
        or abs(before.delay_slots - after.delay_slots) > _JITTER_SLOTS
        or abs(before.gain_db - after.gain_db) > 6.0
    )


def _describe(path: EchoPath) -> str:
    if path.gain_db <= _FLOOR_DB:
        return "none (the input does not follow the playback)"
    return f"{path.delay_slots * SLOT_S:.2f} s late, {path.gain_db:+.0f} dB"
