"""An audio sink that "plays" in real time: each play call waits as long as its audio lasts.

It records when every play call started and ended, so the silence between sentences can be measured.
Used by tests/test_speaking.py and bench/speech_synthesis.py.
"""

from __future__ import annotations

import threading
import time

from machine.ports import FloatAudio, PlaybackReport


class RealTimeSink:
    """Waits out each chunk's duration (returning early when cancelled) and records the monotonic span."""

    def __init__(self) -> None:
        self.sample_rate = 0
        self.plays: list[tuple[float, float]] = []
        self.interrupted = 0
        self.replies_ended = 0

    def begin_reply(self, sample_rate: int) -> None:
        """Take the reply's rate, which gives every chunk's duration."""
        self.sample_rate = sample_rate

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        """Block for the audio's duration, or until `cancel` is set."""
        started = time.monotonic()
        if cancel.wait(len(audio) / self.sample_rate):
            self.interrupted += 1
        self.plays.append((started, time.monotonic()))

    def end_reply(self, cancel: threading.Event) -> PlaybackReport:
        """Count the closed reply."""
        self.replies_ended += 1
        return PlaybackReport()

    def gaps_s(self) -> list[float]:
        """Silence between the end of each play call and the start of the next."""
        return [start - end for (_, end), (start, _) in zip(self.plays, self.plays[1:], strict=False)]
