"""Capturing the world from an input device: one PortAudio callback thread that only copies frames.

The callback copies each block into a bounded queue (a full queue drops the block and counts it) and
notes how far the stream has got (:class:`~machine.audio.sample_clock.SampleClock`). The source thread
converts blocks to float32 mono, resamples them to 16 kHz when the device cannot record at that rate,
cuts them into fixed 512-sample chunks and hands those to the runtime, each stamped with the time its last
sample was captured, from the stream's sample count (not the jittery time the thread got to it). A device
that errors, stalls or disappears is closed, the turn in flight is reset, and the device is reopened with
backoff.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import pyaudio
import soxr

from machine.audio import drain
from machine.audio.devices import pulse_names, resolve, supports_rate
from machine.audio.sample_clock import SampleClock
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk, Deliver, DeviceNotFoundError, WaitForTurn
from machine.settings import LiveAudioSettings

log = logging.getLogger(__name__)


class DeviceLostError(OSError):
    """The input device stopped delivering audio or went away."""


def short_cause(exc: BaseException) -> str:
    """One line saying why a device failed: no device table, no advice meant for a configuration error."""
    if isinstance(exc, DeviceNotFoundError):
        return exc.reason
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class BlockConverter:
    """Turns device blocks of any length at any rate into fixed 512-sample chunks at 16 kHz."""

    def __init__(self, rate: int) -> None:
        self._resampler = (
            None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        )
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add one block; returns every complete chunk now available."""
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples.astype(np.float32, copy=False))
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(self._pending) // CHUNK_SAMPLES
        chunks = [self._pending[i * CHUNK_SAMPLES : (i + 1) * CHUNK_SAMPLES].copy() for i in range(count)]
        self._pending = self._pending[count * CHUNK_SAMPLES :]
        return chunks


class DeviceSource:
    """The runtime's audio source for live input (see :class:`machine.runtime.AudioSource`)."""

    def __init__(
        self, audio: pyaudio.PyAudio, settings: LiveAudioSettings, on_interrupted: Callable[[], None]
    ) -> None:
        self._audio = audio
        self._settings = settings
        self._on_interrupted = on_interrupted
        self._device = resolve(audio, settings.input_device, "input")  # fails early with the device list
        self._blocks: queue.Queue[tuple[bytes, float]] = queue.Queue(maxsize=settings.capture_queue_blocks)
        self._clock = SampleClock()
        self.dropped_blocks = 0
        self.reopened = 0
        self.rate = 0

    def _open(self) -> pyaudio.Stream:
        device = resolve(self._audio, self._settings.input_device, "input")
        self._device = device
        rate = (
            SAMPLE_RATE
            if supports_rate(self._audio, device.info, SAMPLE_RATE, "input")
            else device.info.default_rate
        )
        self.rate = rate
        if device.pulse_name:
            os.environ["PULSE_SOURCE"] = device.pulse_name
        block = max(64, rate * self._settings.block_ms // 1000)
        clock = self._clock = SampleClock()
        captured = 0  # frames the stream has delivered

        def copy_block(data: bytes | None, frames: int, timing: object, status: int) -> tuple[None, int]:
            nonlocal captured
            if status & pyaudio.paInputOverflow:
                clock.restart()  # frames were lost: the count no longer matches the time
            start_s = captured / rate
            captured += frames
            clock.observe(captured / rate, time.monotonic())
            try:
                self._blocks.put_nowait((data or b"", start_s))
            except queue.Full:
                self.dropped_blocks += 1
            return None, pyaudio.paContinue

        stream = self._audio.open(
            format=pyaudio.paFloat32,
            channels=1,
            rate=rate,
            input=True,
            input_device_index=device.info.index,
            frames_per_buffer=block,
            stream_callback=copy_block,
        )
        level = logging.WARNING if device.also_matched else logging.INFO  # an ambiguous name: say so
        log.log(level, "capturing from %s at %d Hz", device.describe(), rate)
        return stream

    def _still_there(self) -> bool:
        if not self._device.pulse_name:
            return True
        names = pulse_names("input")
        return names is None or self._device.pulse_name in names

    def run(self, deliver: Deliver, wait_for_turn: WaitForTurn, stopping: threading.Event) -> None:
        """Capture until `stopping` is set, reopening the device after faults."""
        backoff = self._settings.reopen_initial_s
        first = True
        attempt = 0  # reopening attempts since the device was last open
        while not stopping.is_set():
            stream: pyaudio.Stream | None = None
            try:
                stream = self._open()
                if not first:
                    self.reopened += 1
                    log.info("input device reopened (attempt %d)", attempt)
                first = False
                attempt = 0
                backoff = self._settings.reopen_initial_s
                self._pump(stream, deliver, stopping)
            except (OSError, DeviceNotFoundError) as exc:
                if first:
                    raise  # never opened: a configuration error, with the full device list
                attempt += 1
                log.warning(
                    "input device lost (%s), reopening in %.1f s (attempt %d)",
                    short_cause(exc),
                    backoff,
                    attempt,
                )
                self._on_interrupted()
                stopping.wait(backoff)
                backoff = min(backoff * 2, self._settings.reopen_max_s)
            finally:
                if stream is not None:
                    stream.close()  # closing an active stream aborts it: nothing pending is waited for
                drain(self._blocks)

    def _pump(self, stream: pyaudio.Stream, deliver: Deliver, stopping: threading.Event) -> None:
        converter = BlockConverter(self.rate)
        stream.start_stream()
        last_audio = last_check = time.monotonic()
        fed_s = emitted_s = 0.0  # seconds of audio given to the converter, and cut into chunks
        while not stopping.is_set():
            try:
                data, start_s = self._blocks.get(timeout=0.1)
            except queue.Empty:
                data, start_s = b"", fed_s
            now = time.monotonic()
            if data:
                last_audio = now
                emitted_s += max(start_s - fed_s, 0.0)  # blocks dropped in between
                fed_s = start_s + len(data) / 4 / self.rate  # float32 frames
                for chunk in converter.push(np.frombuffer(data, dtype=np.float32)):
                    emitted_s += CHUNK_SAMPLES / SAMPLE_RATE
                    captured_at = self._clock.time_at(emitted_s)
                    deliver(AudioChunk(samples=chunk, arrived_at=now if captured_at is None else captured_at))
            if now - last_audio > self._settings.stall_timeout_s:
                raise DeviceLostError(f"no audio for {self._settings.stall_timeout_s} s")
            if not stream.is_active():
                raise DeviceLostError("the stream stopped")
            if now - last_check >= 1.0:
                last_check = now
                if not self._still_there():
                    raise DeviceLostError(f"PulseAudio source '{self._device.pulse_name}' went away")
