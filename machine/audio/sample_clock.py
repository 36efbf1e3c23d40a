"""When a stream's audio is at the device, in `time.monotonic()` seconds, from its sample count.

A PortAudio callback runs some time after its block was captured (or after the device asked for the next
block to play): late by the scheduler and by Python's GIL, and a thread that picks the block up later still.
Audio stamped with those times jitters by tens of milliseconds and comes in bunches, which blurs the echo
gate's comparison of what was played with what was heard. The device's sample count does not jitter: audio
second `s` of the stream is at the device at `origin + s`, where `origin` is the earliest
`callback time - audio seconds so far` seen in the last `window_s` (the callback that ran least late). The
window lets the origin follow a device clock that drifts from the system's; `restart` forgets it after a
glitch (an overflow or underflow moves the stream against the clock).
"""

from __future__ import annotations

from collections import deque

__all__ = ["SampleClock"]


class SampleClock:
    """Maps seconds of a stream's audio to monotonic time. `observe` is called from the stream's
    callback; `time_at` from any thread."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._candidates: deque[tuple[float, float]] = deque()  # (observed at, origin), origins increasing
        self._origin: float | None = None

    def observe(self, audio_s: float, at: float) -> None:
        """The stream had reached `audio_s` seconds of audio by monotonic time `at`."""
        origin = at - audio_s
        while self._candidates and self._candidates[-1][1] >= origin:
            self._candidates.pop()
        self._candidates.append((at, origin))
        while self._candidates[0][0] < at - self._window_s:
            self._candidates.popleft()
        self._origin = self._candidates[0][1]

    def time_at(self, audio_s: float) -> float | None:
        """When audio second `audio_s` of the stream is (was) at the device; None before any observation."""
        origin = self._origin
        return None if origin is None else origin + audio_s

    def restart(self) -> None:
        """Forget the origin (the stream glitched); the next observation starts a new one."""
        self._candidates.clear()
        self._origin = None
