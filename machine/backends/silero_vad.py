"""Voice activity from silero-vad's ONNX model, run with onnxruntime on numpy (no torch in the hot path).

The model ships inside the `silero-vad` package. It keeps a recurrent state and a 64-sample context from
the previous chunk, exactly as silero's own `OnnxWrapper` does.
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import onnxruntime

from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, FloatAudio

_CONTEXT = 64


class SileroVoiceActivity:
    """Speech probability per 512-sample chunk at 16 kHz."""

    def __init__(self) -> None:
        model = importlib.resources.files("silero_vad") / "data" / "silero_vad.onnx"
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state and context."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def probability(self, chunk: FloatAudio) -> float:
        """Speech probability of one chunk of exactly 512 samples."""
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ValueError(
                f"silero-vad takes chunks of {CHUNK_SAMPLES} samples at 16 kHz, got {chunk.shape}"
            )
        frame = np.concatenate([self._context, chunk.reshape(1, -1).astype(np.float32, copy=False)], axis=1)
        output, self._state = self._session.run(
            None, {"input": frame, "state": self._state, "sr": self._rate}
        )
        self._context = frame[:, -_CONTEXT:]
        return float(output[0, 0])
