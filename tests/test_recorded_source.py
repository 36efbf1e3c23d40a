"""RecordedSource's bookkeeping: which input files started no turn (no speech heard in them)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile

from machine.audio.recorded import RecordedSource
from machine.ports import AudioChunk
from machine.settings import RecordedInputSettings

SETTINGS = RecordedInputSettings(lead_silence_ms=0, trail_silence_ms=100)


class FakeBot:
    """Stands in for the runtime: audio with any sound in it starts one turn, finished by the time the
    bot listens again (as the runtime reports a turn before it listens again)."""

    def __init__(self, stop_after_chunks: int | None = None) -> None:
        self.turns = 0
        self.stopping = threading.Event()
        self._sound = False
        self._chunks = 0
        self._stop_after = stop_after_chunks

    def deliver(self, chunk: AudioChunk) -> None:
        self._sound = self._sound or bool(np.any(chunk.samples))
        self._chunks += 1
        if self._stop_after is not None and self._chunks >= self._stop_after:
            self.stopping.set()

    def wait_for_turn(self, timeout: float) -> bool:
        if self._sound:
            self.turns += 1
            self._sound = False
        return True


def _wav(folder: Path, name: str, sound: bool) -> Path:
    path = folder / name
    audio = np.full(8000, 0.1 if sound else 0.0, dtype=np.float32)
    soundfile.write(str(path), audio, 16_000)
    return path


def test_files_that_started_no_turn_are_noted(tmp_path: Path) -> None:
    files = [
        _wav(tmp_path, "q1.wav", sound=False),
        _wav(tmp_path, "q2.wav", sound=True),
        _wav(tmp_path, "q3.wav", sound=False),
        _wav(tmp_path, "q4.wav", sound=True),
        _wav(tmp_path, "q5.wav", sound=False),  # the last file: noted after the final wait
    ]
    bot = FakeBot()
    source = RecordedSource(files, SETTINGS, realtime=False, turns_so_far=lambda: bot.turns)
    source.run(bot.deliver, bot.wait_for_turn, bot.stopping)
    assert bot.turns == 2
    assert source.unheard == [files[0], files[2], files[4]]


def test_a_file_cut_short_by_a_stop_is_not_called_unheard(tmp_path: Path) -> None:
    files = [_wav(tmp_path, "q1.wav", sound=False), _wav(tmp_path, "q2.wav", sound=False)]
    bot = FakeBot(stop_after_chunks=3)  # stopped inside the first file
    source = RecordedSource(files, SETTINGS, realtime=False, turns_so_far=lambda: bot.turns)
    source.run(bot.deliver, bot.wait_for_turn, bot.stopping)
    assert source.unheard == []
