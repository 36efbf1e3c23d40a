"""Telling the bot's own echo from a new voice, chunk by chunk, whatever the bot is doing.

The output sink writes the level of every block it plays, stamped with the time it reaches the device,
into :class:`PlaybackLevels` (one slot per 32 ms). For each input chunk, :class:`EchoGate` predicts the
loudest echo the input could hear now: the loudest playback level one echo delay ago (± a little jitter)
plus the echo path's gain. A chunk louder than that by `margin_db` is a new voice; anything quieter is
treated as the bot's echo, and the endpointer hears silence instead.

The delay and the gain are learned from what the input hears while the bot plays: the input's level
follows the playback's, one echo delay later, when it carries an echo. For every candidate delay up to
`max_delay_ms` the two levels of the last few seconds are correlated; the best delay, when it correlates
well, is the echo's, and the low end (10th percentile) of the input-minus-playback levels there is its gain
(anything else heard, a user or noise, only adds level). An echo path's delay is not fixed: a loopback that
adapts its latency, or a sound server that rebuilds a stream, moves it from one reply to the next (a 1 s
loopback measured 1.25 s for one reply and 1.00 s for the next). So every delay learned in the last 30 s
is kept, and the gate masks over the whole range they span, widened by a quarter second either way for a
move it has not heard yet, at the loudest gain among them. While the estimate is unclear (a middling
match: the last seconds mix two delays, or a user talks over the echo) the gate assumes the worst until it
is clear again.

When nothing correlates clearly and no echo was learned in the last 30 s, the input carries no echo: a
digital cable that is silent while the bot speaks (separate virtual cables) or a room whose noise ignores
the bot, so a user at any level is heard (a user talking over the bot on a silent cable can correlate
with it by chance, up to about 0.6). Until
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

from machine.ports import CHUNK_MS, AudioChunk
from machine.shared.levels import SILENCE_DBFS, SLOT_S, PlaybackLevels, dbfs

log = logging.getLogger(__name__)

_JITTER_SLOTS = 2
"""Echo arrives within ± this many slots of the delay (device and scheduling jitter)."""
_DRIFT_SLOTS = 8
"""The delay may move this many slots (about 0.25 s) either way from one reply to the next before the gate
has heard it move: masked around every learned delay, with the jitter."""
_LOUD_DB = -50.0
"""Playback at least this loud teaches the gate something about the echo path."""
_LOUD_RANGE_DB = 20.0
"""Only playback within this much of the loudest is used to learn the gain."""
_LEARN_FROM = 24
"""Loud playback chunks needed before the learned delay and gain are trusted (about 0.8 s)."""
_LEARN_WINDOW = 96
"""The most recent observations (about 3 s) the estimate is made from: mostly the latest reply's."""
_LEARN_EVERY = 4
_LOW = 10.0
_ECHO_MATCH = 0.7
"""The correlation between playback and input levels above which the input carries an echo at that delay."""
_FAINT_DB = -40.0
"""An echo path this much quieter than the playback (or more) masks nothing that matters: no echo."""
_KEEP_SLOTS = math.ceil(30.0 / SLOT_S)
"""A delay learned this long ago (in slots, 30 s) no longer counts."""
_FLOOR_DB = -100.0


@dataclass(frozen=True)
class EchoPath:
    """What the gate believes about the echo: the range of its delay (in 32 ms slots, jitter included) and
    its gain in dB (at most `_FLOOR_DB`: no echo)."""

    shortest_slots: int
    longest_slots: int
    gain_db: float
    learned: bool

    @property
    def carries_echo(self) -> bool:
        """Whether the input carries the bot's echo at all."""
        return self.gain_db > _FLOOR_DB


@dataclass(frozen=True)
class _Learned:
    slot: int
    delay_slots: int
    gain_db: float


class EchoGate:
    """Decides, per input chunk, whether it could be the bot's echo; learns the echo path as it goes."""

    def __init__(self, levels: PlaybackLevels, margin_db: float, max_delay_ms: int) -> None:
        self._levels = levels
        self._margin = margin_db
        self._max_delay = math.ceil(max_delay_ms / CHUNK_MS)
        self._observed: deque[tuple[int, float]] = deque(maxlen=_LEARN_WINDOW)
        self._since_estimate = 0
        self._learned: list[_Learned] = []
        self.path = self._worst(learned=False)

    def _worst(self, learned: bool) -> EchoPath:
        """Any delay up to the longest, as loud as the playback."""
        return EchoPath(0, self._max_delay + _JITTER_SLOTS, 0.0, learned)

    def expected_echo_db(self, slot: int) -> float:
        """The loudest echo the input could carry at `slot`, by what is believed about the path."""
        path = self.path
        if not path.carries_echo:
            return SILENCE_DBFS
        played = float(self._levels.slots(slot - path.longest_slots, slot - path.shortest_slots).max())
        return played + path.gain_db if played > SILENCE_DBFS else SILENCE_DBFS

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
            path, self.path = self.path, self._learn(slot)
            if _differs(path, self.path):
                log.info("echo path: %s", _describe(self.path))

    def _learn(self, slot: int) -> EchoPath:
        """The path by the newest estimate and the delays learned in the last 30 s."""
        match, estimate = self._estimate()
        self._learned = [known for known in self._learned if known.slot > slot - _KEEP_SLOTS]
        if estimate is None or match < _ECHO_MATCH or estimate.gain_db < _FAINT_DB:
            if self._learned:
                return self._worst(True)  # unclear: an echo buried in other sound, or a delay on the move
            # no clear echo and none learned lately: the input does not follow the playback, or only far
            # below it (a silent cable with a user talking over the bot can match by chance)
            return EchoPath(0, 0, _FLOOR_DB, learned=True)
        self._learned.append(estimate)
        return EchoPath(
            max(min(known.delay_slots for known in self._learned) - _DRIFT_SLOTS, 0),
            max(known.delay_slots for known in self._learned) + _DRIFT_SLOTS,
            max(known.gain_db for known in self._learned),
            learned=True,
        )

    def _estimate(self) -> tuple[float, _Learned | None]:
        """The best correlation of input and playback levels over the candidate delays, and the delay and
        gain there (None when too little was played to tell)."""
        slots = np.array([slot for slot, _ in self._observed], dtype=np.int64)
        heard = np.maximum(np.array([level for _, level in self._observed]), _FLOOR_DB)
        first = int(slots.min()) - self._max_delay
        played = np.maximum(self._levels.slots(first, int(slots.max())), _FLOOR_DB)
        best: tuple[float, _Learned | None] = (-1.0, None)
        for delay in range(self._max_delay + 1):
            reference = played[slots - delay - first]
            loud = reference >= max(_LOUD_DB, float(reference.max()) - _LOUD_RANGE_DB)
            if loud.sum() < _LEARN_FROM or np.ptp(heard[loud]) == 0:
                continue
            # an echo follows the playback; a user or the room's noise do not
            match = float(np.corrcoef(heard[loud], reference[loud])[0, 1])
            if match > best[0]:
                # whatever else is heard only adds level: the echo is the low end of the gains
                gain = float(np.percentile(heard[loud] - reference[loud], _LOW))
                best = (match, _Learned(int(slots.max()), delay, gain))
        return best


def _differs(before: EchoPath, after: EchoPath) -> bool:
    return (
        before.learned != after.learned
        or before.carries_echo != after.carries_echo
        or abs(before.shortest_slots - after.shortest_slots) > _JITTER_SLOTS
        or abs(before.longest_slots - after.longest_slots) > _JITTER_SLOTS
        or abs(before.gain_db - after.gain_db) > 6.0
    )


def _describe(path: EchoPath) -> str:
    if not path.carries_echo:
        return "none (the input does not follow the playback)"
    return (
        f"{path.shortest_slots * SLOT_S:.2f} to {path.longest_slots * SLOT_S:.2f} s late, "
        f"{path.gain_db:+.0f} dB"
    )
