"""RNNoise (through the `pyrnnoise` package) on the runtime's 16 kHz chunks.

RNNoise works on 10 ms frames at 48 kHz, so each 32 ms chunk is resampled up, denoised frame by frame,
and resampled down again. A short priming delay keeps the output exactly one chunk per input chunk.
"""

from __future__ import annotations

import numpy as np
import soxr
from pyrnnoise import rnnoise

from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, FloatAudio

_RATE = rnnoise.SAMPLE_RATE
_FRAME = rnnoise.FRAME_SIZE
_PRIMING = 2 * CHUNK_SAMPLES  # output delay (64 ms at 16 kHz) that absorbs the resamplers' jitter


class RnnoiseDenoiser:
    """Stateful: one instance per input stream."""

    def __init__(self) -> None:
        self._state = rnnoise.create()
        self._up = soxr.ResampleStream(SAMPLE_RATE, _RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(_RATE, SAMPLE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, dtype=np.float32)
        self._out = np.zeros(_PRIMING, dtype=np.float32)

    def __call__(self, chunk: FloatAudio) -> FloatAudio:
        """Denoise one chunk; returns a chunk of the same length (delayed by the priming)."""
        self._pending = np.concatenate([self._pending, self._up.resample_chunk(chunk)])
        frames = len(self._pending) // _FRAME
        if frames:
            cleaned = []
            for index in range(frames):
                frame = self._pending[index * _FRAME : (index + 1) * _FRAME]
                out, _ = rnnoise.process_mono_frame(self._state, np.clip(frame, -1.0, 1.0))
                cleaned.append(out.astype(np.float32) / 32767.0)
            self._pending = self._pending[frames * _FRAME :]
            self._out = np.concatenate([self._out, self._down.resample_chunk(np.concatenate(cleaned))])
        if len(self._out) < len(chunk):
            self._out = np.concatenate([np.zeros(len(chunk) - len(self._out), dtype=np.float32), self._out])
        result, self._out = self._out[: len(chunk)], self._out[len(chunk) :]
        return result

    def __del__(self) -> None:
        rnnoise.destroy(self._state)
