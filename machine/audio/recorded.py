"""Recorded audio in, WAV files out: the runtime's source and sink for `--input PATH --output DIR`.

The source plays each file as a user would speak it: it waits until the bot is listening, then feeds
lead silence, the file and trailing silence in 32 ms chunks, paced in real time unless `fast`. While it
waits for the bot, silence goes on arriving in real time, as in a room. Given a
count of the turns so far, it also notes each file after which no turn had begun (no speech heard in it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from machine.audio.files import read_wav, write_wav
from machine.ports import (
    CHUNK_SAMPLES,
    SAMPLE_RATE,
    AudioChunk,
    Deliver,
    FloatAudio,
    PlaybackReport,
    WaitForTurn,
)
from machine.settings import RecordedInputSettings

CHUNK_S = CHUNK_SAMPLES / SAMPLE_RATE


class RecordedSource:
    """Feeds recorded utterances, one after another, to `deliver`, waiting for the bot between them."""

    def __init__(
        self,
        files: list[Path],
        settings: RecordedInputSettings,
        realtime: bool,
        turns_so_far: Callable[[], int] | None = None,
    ) -> None:
        self.files = files
        # Read everything up front, so a bad file is reported before the conversation starts.
        self._audio = [read_wav(path) for path in files]
        self._settings = settings
        self._realtime = realtime
        self._turns_so_far = turns_so_far
        self.unheard: list[Path] = []
        """Files played to the end with no turn begun by the time the bot listened again (needs
        `turns_so_far`, the number of turns the runtime has finished)."""

    def _note_unheard(self, played: tuple[Path, int] | None) -> None:
        """After the bot listens again: `played` (a file and the turn count before it) started no turn."""
        if played is not None and self._turns_so_far is not None and self._turns_so_far() == played[1]:
            self.unheard.append(played[0])

    def _padded(self, audio: FloatAudio) -> FloatAudio:
        lead = np.zeros(SAMPLE_RATE * self._settings.lead_silence_ms // 1000, dtype=np.float32)
        trail = np.zeros(SAMPLE_RATE * self._settings.trail_silence_ms // 1000, dtype=np.float32)
        joined = np.concatenate([lead, audio, trail])
        padding = -len(joined) % CHUNK_SAMPLES
        return np.concatenate([joined, np.zeros(padding, dtype=np.float32)])

    def run(self, deliver: Deliver, wait_for_turn: WaitForTurn, stopping: threading.Event) -> None:
        """Play every file; `wait_for_turn(timeout)` blocks until the bot listens again (False on timeout).

        The turns a file starts are finished once the bot listens again, so a turn count unchanged since
        before the file means no speech was heard in it."""
        played: tuple[Path, int] | None = None
        for path, audio in zip(self.files, self._audio, strict=True):
            if stopping.is_set() or not self._wait_in_silence(deliver, wait_for_turn, stopping):
                if not stopping.is_set():
                    raise TimeoutError(
                        f"the bot did not finish its previous turn within {self._settings.reply_timeout_s} s "
                        f"(before {path.name}); raise machine.recorded.reply_timeout_s on a slow machine"
                    )
                return
            self._note_unheard(played)
            played = (path, self._turns_so_far() if self._turns_so_far is not None else 0)
            padded = self._padded(audio)
            start = time.monotonic()
            for index in range(len(padded) // CHUNK_SAMPLES):
                if stopping.is_set():
                    return
                if self._realtime:
                    delay = start + (index + 1) * CHUNK_S - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                chunk = padded[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES]
                deliver(AudioChunk(samples=chunk, arrived_at=time.monotonic()))
        if self._wait_in_silence(deliver, wait_for_turn, stopping) and not stopping.is_set():
            self._note_unheard(played)

    def _wait_in_silence(
        self, deliver: Deliver, wait_for_turn: WaitForTurn, stopping: threading.Event
    ) -> bool:
        """Wait until the bot listens again, as a room would: silence goes on arriving in real time
        meanwhile (a turn that ends after a silence needs it); False on timeout or when stopping."""
        start = time.monotonic()
        silence = np.zeros(CHUNK_SAMPLES, dtype=np.float32)
        index = 0
        while not stopping.is_set() and time.monotonic() - start <= self._settings.reply_timeout_s:
            index += 1
            if wait_for_turn(max(0.0, start + index * CHUNK_S - time.monotonic())):
                return True
            deliver(AudioChunk(samples=silence, arrived_at=time.monotonic()))
        return False


class WavReplySink:
    """Writes each reply to `reply-NNN.wav`; in real time it takes as long as playing would."""

    def __init__(self, folder: Path, realtime: bool) -> None:
        self.folder = folder
        self._realtime = realtime
        self._parts: list[FloatAudio] = []
        self._rate = 0
        self.written: list[Path] = []

    def begin_reply(self, sample_rate: int) -> None:
        """Start collecting a reply at `sample_rate`."""
        self._parts = []
        self._rate = sample_rate

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        """Keep the audio; in real time, return only after its duration (or at once when cancelled)."""
        self._parts.append(audio)
        if self._realtime:
            cancel.wait(len(audio) / self._rate)

    def end_reply(self, cancel: threading.Event) -> PlaybackReport:
        """Write the reply collected since `begin_reply`; all of it is delivered (to the file)."""
        if not self._parts:
            return PlaybackReport()
        path = self.folder / f"reply-{len(self.written) + 1:03d}.wav"
        audio = np.concatenate(self._parts)
        write_wav(path, audio, self._rate)
        self.written.append(path)
        self._parts = []
        seconds = round(len(audio) / self._rate, 3)
        return PlaybackReport(seconds, seconds, 0)
