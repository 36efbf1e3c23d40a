"""Playing the bot's voice on an output device, written ahead through a bounded queue, stoppable at once.

`play` queues a reply's audio block by block (up to `playback_queue_blocks` ahead of the device) and
returns as soon as it is queued, so sentences follow each other without a gap; `end_reply` waits until
the device has played the last block. The PortAudio callback only takes one block per call (silence when
the queue is empty, so the stream stays open between replies), notes its level and play time for the
echo gate (the time from the stream's sample count, :class:`~machine.audio.sample_clock.SampleClock`, not
from when the callback happened to run), and counts underruns: the device's own (PortAudio's
output-underflow flag) and the queue running dry in the middle of a sentence; silence while the next
sentence is still being generated is reported apart, as a pause. Cancelling empties the queue, so at most
the blocks already handed to the device are heard.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

import numpy as np
import pyaudio
import soxr

from machine.audio import drain
from machine.audio.devices import resolve, supports_rate
from machine.audio.sample_clock import SampleClock
from machine.ports import FloatAudio, PlaybackReport
from machine.settings import LiveAudioSettings
from machine.shared.levels import PlaybackLevels, dbfs

log = logging.getLogger(__name__)


class DeviceSink:
    """The runtime's audio sink for live output (see :class:`machine.ports.AudioSink`)."""

    def __init__(self, audio: pyaudio.PyAudio, settings: LiveAudioSettings, levels: PlaybackLevels) -> None:
        self._audio = audio
        self._settings = settings
        self._levels = levels
        self._device = resolve(audio, settings.output_device, "output")
        self._blocks: queue.Queue[FloatAudio] = queue.Queue(maxsize=settings.playback_queue_blocks)
        self._stream: pyaudio.Stream | None = None
        self._stream_rate = 0
        self._source_rate = 0
        self._block = 0
        self._resampler: soxr.ResampleStream | None = None
        self._partial = np.zeros(0, dtype=np.float32)
        self._in_reply = False
        self._feeding = False
        self._draining = False
        self._paused = 0
        self._synthesised = 0
        self._handed = 0
        self._underruns = 0
        self._idle = threading.Event()
        self._idle.set()

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
        clock = SampleClock()  # maps seconds of the stream to when they reach the device
        handed = 0  # frames handed to the stream, silence included
        period = self._block / stream_rate
        filling, last_call = True, 0.0

        def next_block(
            data: bytes | None, frames: int, timing: dict[str, Any], status: int
        ) -> tuple[bytes, int]:
            nonlocal handed, filling, last_call
            now = time.monotonic()
            # A new stream first fills the device's buffer, callbacks back to back, PulseAudio's ALSA
            # plugin flagging each as an underflow (nothing was written yet): nothing was playing, so
            # those are no underruns; the first callback a block period after the last ends the filling.
            filling = filling and (last_call == 0.0 or now - last_call < period / 2)
            last_call = now
            if status & pyaudio.paOutputUnderflow:
                clock.restart()  # the device played silence of its own: the count no longer matches the time
                if self._in_reply and not filling:
                    self._underruns += 1
            start_s = handed / stream_rate
            handed += self._block
            ahead = timing.get("output_buffer_dac_time", 0.0) - timing.get("current_time", 0.0)
            clock.observe(start_s, time.monotonic() + min(max(ahead, 0.0), 1.0))  # when it will be heard
            try:
                block = self._blocks.get_nowait()
            except queue.Empty:
                if self._feeding:
                    self._underruns += 1  # in the middle of a sentence, nothing is ready to play
                elif self._in_reply and not self._draining:
                    self._paused += len(silence)  # waiting for the next sentence
                self._idle.set()
                return silence.tobytes(), pyaudio.paContinue
            self._handed += len(block)
            heard_at = clock.time_at(start_s)
            assert heard_at is not None  # observed above
            self._levels.record(heard_at, dbfs(block))
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
        level = logging.WARNING if self._device.also_matched else logging.INFO  # an ambiguous name: say so
        log.log(level, "playing to %s at %d Hz", self._device.describe(), stream_rate)

    def begin_reply(self, sample_rate: int) -> None:
        """Make sure the stream runs at (or resamples from) `sample_rate`; start counting a new reply."""
        if self._stream is None or self._source_rate != sample_rate or not self._stream.is_active():
            self._open(sample_rate)
        self._partial = np.zeros(0, dtype=np.float32)
        self._synthesised = self._handed = self._underruns = self._paused = 0
        self._draining = False
        self._in_reply = True

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        """Queue `audio` after what is queued already (blocking while the queue is full); returns when it
        is all queued, or at once when `cancel` is set (then everything queued is dropped)."""
        self._synthesised += len(audio)
        audio = audio * self._settings.output_gain
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        pending = np.concatenate([self._partial, audio.astype(np.float32, copy=False)])
        whole = len(pending) // self._block * self._block
        self._partial = pending[whole:]
        self._queue(pending[:whole].reshape(-1, self._block), cancel)

    def _queue(self, blocks: np.ndarray, cancel: threading.Event) -> None:
        self._feeding = True
        try:
            for block in blocks:
                self._idle.clear()
                while not cancel.is_set():
                    try:
                        self._blocks.put(block, timeout=0.02)
                        break
                    except queue.Full:
                        continue
                if cancel.is_set():
                    self.stop()
                    return
        finally:
            self._feeding = False

    def end_reply(self, cancel: threading.Event) -> PlaybackReport:
        """Queue the last partial block, wait until the device has played everything (and its own buffer),
        and report the reply's audio: seconds synthesised and delivered, underruns."""
        if self._partial.size and not cancel.is_set():
            last = np.zeros(self._block, dtype=np.float32)
            last[: self._partial.size] = self._partial
            self._queue(last.reshape(1, -1), cancel)
        self._partial = np.zeros(0, dtype=np.float32)
        self._draining = True
        while not cancel.is_set() and not (self._blocks.empty() and self._idle.is_set()):
            cancel.wait(0.005)
        if self._stream is not None and not cancel.is_set():
            cancel.wait(self._stream.get_output_latency())
        if cancel.is_set():
            self.stop()
        self._in_reply = False
        synthesised = self._synthesised / self._source_rate if self._source_rate else 0.0
        delivered = min(synthesised, self._handed / self._stream_rate) if self._stream_rate else 0.0
        paused = self._paused / self._stream_rate if self._stream_rate else 0.0
        report = PlaybackReport(round(synthesised, 3), round(delivered, 3), self._underruns, round(paused, 3))
        if report.underruns:
            log.warning("the reply's audio ran dry %d time(s) on the way to the device", report.underruns)
        return report

    def stop(self) -> None:
        """Silence at once: drop everything queued."""
        self._feeding = False
        drain(self._blocks)

    def close(self) -> None:
        """Close the output stream."""
        if self._stream is not None:
            self.stop()
            self._stream.close()  # aborts: what the device still buffers is dropped, not drained
            self._stream = None
