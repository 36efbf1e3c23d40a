"""Barge-in: a user who talks over the bot long enough stops it; the bot's own echo never does.

While the bot speaks, each input chunk is compared with what is being played (the playback level is the
echo reference). A chunk counts as the user when silero-vad hears speech *and* its level stands above
the loudest recent reference plus the echo path's gain plus a margin; the recent-reference window
absorbs the device latency between playing a syllable and hearing its echo. The echo path's gain starts
at 0 dB (the echo as loud as the playback: the worst case, a direct loopback); it is learned from chunks
that are plainly echo as an upper envelope (quick to rise, slow to fall), so quiet syllables do not
make louder echo look like a user. Barge-in needs half the chunks of the last `hold_ms` to be the user.

This is a level test, not an echo canceller: over a direct loopback the user must be clearly louder than
the bot's own voice (`machine.audio.output_gain` lowers the bot).
"""

from __future__ import annotations

import math
from collections import deque

from machine.endpointing import CHUNK_MS, SILENCE_DBFS, dbfs
from machine.ports import AudioChunk, VoiceActivity

_REFERENCE_WINDOW_MS = 320
_QUIET_REFERENCE_DB = -60.0
_RISE = 0.3
_FALL = 0.002
_MOSTLY = 0.5


class BargeInDetector:
    """Feed input chunks (with the playback level at the time) while the bot speaks; True means barge in."""

    def __init__(self, vad: VoiceActivity, vad_threshold: float, hold_ms: int, margin_db: float) -> None:
        self._vad = vad
        self._threshold = vad_threshold
        self._window = math.ceil(hold_ms / CHUNK_MS)
        self._margin = margin_db
        self._references: deque[float] = deque(maxlen=math.ceil(_REFERENCE_WINDOW_MS / CHUNK_MS))
        self._recent: deque[tuple[AudioChunk, bool]] = deque(maxlen=self._window)
        self.coupling_db = 0.0
        """The echo path's gain: how loud the bot's own voice comes back, relative to the playback."""

    @property
    def held(self) -> list[AudioChunk]:
        """The chunks of the last `hold_ms` from the user's first chunk on: their speech so far."""
        chunks = list(self._recent)
        first = next((i for i, (_, user) in enumerate(chunks) if user), len(chunks))
        return [chunk for chunk, _ in chunks[first:]]

    def reset(self) -> None:
        """Start afresh for a new reply (the learned echo gain is kept)."""
        self._references.clear()
        self._recent.clear()
        self._vad.reset()

    def push(self, chunk: AudioChunk, reference_db: float) -> bool:
        """Whether the user has now talked over the bot for long enough."""
        self._references.append(reference_db)
        level = dbfs(chunk.samples)
        loudest = max(self._references)
        playing = loudest > _QUIET_REFERENCE_DB
        excess = level - (loudest + self.coupling_db) if playing else level - SILENCE_DBFS
        user = excess >= self._margin and self._vad.probability(chunk.samples) >= self._threshold
        if playing and not user and excess < self._margin / 2 and level > SILENCE_DBFS:
            # track the upper envelope of the echo gain: quickly up, very slowly down
            gain = level - loudest
            rate = _RISE if gain > self.coupling_db else _FALL
            self.coupling_db = max(-40.0, self.coupling_db + rate * (gain - self.coupling_db))
        self._recent.append((chunk, user))
        users = sum(flag for _, flag in self._recent)
        return user and len(self._recent) == self._window and users >= _MOSTLY * self._window
