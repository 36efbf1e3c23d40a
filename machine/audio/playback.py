"""Playing the bot's voice on an output device, from a bounded queue, so a reply can be stopped at once.

The PortAudio callback takes one block per call from the queue and plays silence when it is empty, so the
stream stays open between replies. `play` waits while its audio drains; cancelling empties the queue, so
at most the block already handed to the device is heard.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time

import numpy as np
import pyaudio
import soxr

from machine.audio import drain
from machine.audio.devices import resolve, supports_rate
from machine.endpointing import SILENCE_DBFS, dbfs
from machine.ports import FloatAudio
from machine.settings import LiveAudioSettings

log = logging.getLogger(__name__)


class DeviceSink:
    """The runtime's audio sink for live output (see :class:`machine.ports.AudioSink`)."""

    def __init__(self, audio: pyaudio.PyAudio, settings: LiveAudioSettings) -> None:
        self._audio = audio
        self._settings = settings
        self._device = resolve(audio, settings.output_device, "output")
        self._blocks: queue.Queue[FloatAudio] = queue.Queue(maxsize=settings.playback_queue_blocks)
        self._stream: pyaudio.Stream | None = None
        self._stream_rate = 0
        self._source_rate = 0
        self._block = 0
        self._resampler: soxr.ResampleStream | None = None
        self._level_db = SILENCE_DBFS
        self._playing = threading.Event()

    @property
    def level_db(self) -> float:
        """Level of the block the device is playing now (silence when idle): the echo reference."""
        return self._level_db if self._playing.is_set() else SILENCE_DBFS

    def _open(self, rate: int) -> None:
        self.close()
        device = self._device.info
        stream_rate = rate if supports_rate(self._audio, device, rate, "output") else device.default_rate
        if self._device.pulse_name:
            os.environ["PULSE_SINK"] = self._device.pulse_name
        self._block = max(64, stream_rate * self._settings.block_ms // 1000)
        self._resampler = (
            None if stream_rate == rate else soxr.ResampleStream(rate, stream_rate, 1, dtype="float32")
        )
        silence = np.zeros(self._block, dtype=np.float32)

        def next_block(data: bytes | None, frames: int, timing: object, status: int) -> tuple[bytes, int]:
            try:
                block = self._blocks.get_nowait()
                self._level_db = dbfs(block)
                self._playing.set()
            except queue.Empty:
                block = silence
                self._playing.clear()
            return block.tobytes(), pyaudio.paContinue

        self._stream = self._audio.open(
            format=pyaudio.paFloat32,
            channels=1,
            rate=stream_rate,
            output=True,
            output_device_index=device.index,
            frames_per_buffer=self._block,
            stream_callback=next_block,
        )
        self._stream_rate, self._source_rate = stream_rate, rate
        log.info("playing to %s at %d Hz", self._device.pulse_name or device.name, stream_rate)

    def begin_reply(self, sample_rate: int) -> None:
        """Make sure the stream runs at (or resamples from) `sample_rate`."""
        if self._stream is None or self._source_rate != sample_rate or not self._stream.is_active():
            self._open(sample_rate)

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        """Queue `audio` block by block and wait until it has been played, or drop it all when cancelled."""
        audio = audio * self._settings.output_gain
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        blocks = math.ceil(len(audio) / self._block)
        padded = np.zeros(blocks * self._block, dtype=np.float32)
        padded[: len(audio)] = audio
        for block in padded.reshape(blocks, self._block):
            while not cancel.is_set():
                try:
                    self._blocks.put(block, timeout=0.02)
                    break
                except queue.Full:
                    continue
            if cancel.is_set():
                break
        while not cancel.is_set() and (not self._blocks.empty() or self._playing.is_set()):
            cancel.wait(0.005)
        if cancel.is_set():
            self.stop()

    def end_reply(self) -> None:
        """Wait out the device's own buffer, so the reply has really been heard when this returns."""
        if self._stream is not None:
            time.sleep(self._stream.get_output_latency())

    def stop(self) -> None:
        """Silence at once: drop everything queued."""
        drain(self._blocks)
        self._playing.clear()

    def close(self) -> None:
        """Close the output stream."""
        if self._stream is not None:
            self.stop()
            self._stream.close()  # aborts: what the device still buffers is dropped, not drained
            self._stream = None
