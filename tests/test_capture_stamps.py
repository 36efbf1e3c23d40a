"""Chunks are stamped with the time their audio was captured, from the stream's sample count: a callback
that runs late and a source thread that picks blocks up in bunches (a busy machine) do not bunch the stamps,
which the echo gate compares with the playback's, 32 ms slot by 32 ms slot."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from test_capture_reconnect import _FakePyAudio

from machine.audio.capture import DeviceSource
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk
from machine.settings import LiveAudioSettings


class _LateStream:
    """Calls the capture callback with blocks of the requested size in real time, each late by 0-15 ms,
    and every tenth one 60 ms late (a stall that is caught up)."""

    def __init__(self, callback: Any, rate: int, frames: int) -> None:
        self._callback = callback
        self.rate, self.frames = rate, frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.captured: list[float] = []  # when each block's last sample was at the device

    def _run(self) -> None:
        rng = np.random.default_rng(5)
        start = time.monotonic()
        block = np.zeros(self.frames, dtype=np.float32).tobytes()
        n = 0
        while not self._stop.is_set():
            n += 1
            due = start + n * self.frames / self.rate
            late = 0.06 if n % 10 == 0 else rng.uniform(0.0, 0.015)
            self._stop.wait(max(0.0, due + late - time.monotonic()))
            self.captured.append(due)
            self._callback(block, self.frames, {}, 0)

    def start_stream(self) -> None:
        self._thread.start()

    def is_active(self) -> bool:
        return not self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _LateAudio(_FakePyAudio):
    def open(self, **kwargs: Any) -> _LateStream:
        self.stream = _LateStream(kwargs["stream_callback"], kwargs["rate"], kwargs["frames_per_buffer"])
        return self.stream


def test_chunk_stamps_follow_the_sample_count_not_the_callbacks() -> None:
    audio = _LateAudio()
    stopping = threading.Event()
    chunks: list[AudioChunk] = []

    def deliver(chunk: AudioChunk) -> None:
        chunks.append(chunk)
        if len(chunks) == 32:  # about 1 s: three of the 60 ms stalls
            stopping.set()

    source = DeviceSource(audio, LiveAudioSettings(input_device="CABLE"), on_interrupted=lambda: None)
    source.run(deliver, lambda timeout: True, stopping)

    stamps = np.array([chunk.arrived_at for chunk in chunks])
    steps = np.diff(stamps[5:])
    chunk_s = CHUNK_SAMPLES / SAMPLE_RATE
    assert np.abs(steps - chunk_s).max() < 0.004, f"steps between stamps: {np.round(steps * 1000)} ms"
    stream = audio.stream
    first_due = stream.captured[0] - stream.frames / stream.rate  # when the first sample was captured
    expected = first_due + chunk_s * np.arange(1, len(stamps) + 1)
    assert np.abs(stamps - expected)[5:].max() < 0.01, "stamped when the audio was captured"
