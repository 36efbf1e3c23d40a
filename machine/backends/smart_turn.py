"""End of turn by a model: Smart Turn v3.2 (BSD-2-Clause, by Daily) on the last seconds of speech.

A Whisper-tiny encoder with a classifier, as an 8.7 MB int8 ONNX file that ships inside the `pipecat-ai`
wheel (installed pinned and without its dependencies; the file is found on disk, pipecat is never
imported). It hears how a phrase ends (intonation, a word left hanging) rather than how long the pause
is, so "I was thinking ..." followed by a breath is *incomplete*, and "What is your favourite colour?" is
*complete* after a fifth of a second of silence.

Input: the last 8 s of the turn at 16 kHz, zero-padded at the front, as normalised Whisper log-mel
features [1, 80, 800] (:mod:`machine.backends.whisper_features`, transformers' `WhisperFeatureExtractor`
in numpy). Output: the probability that the speaker has finished. The int8 model is touchy near its
edges: feature differences of 1e-5 (transformers' torch STFT against numpy) move a few inputs' scores by
up to 0.05, the way a different rendition of the same words moves them more.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime

from machine.backends import bundled_models
from machine.backends.whisper_features import log_mel
from machine.ports import SAMPLE_RATE, FloatAudio

log = logging.getLogger(__name__)

WINDOW_S = 8
"""The model sees at most this many seconds: the end of the turn."""


class SmartTurn:
    """Turn-end probabilities from the bundled Smart Turn v3.2 model (or another file of the same form)."""

    def __init__(self, model: Path | None = None, threads: int = 1) -> None:
        path = model or bundled_models.smart_turn_onnx()
        options = onnxruntime.SessionOptions()
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._window = WINDOW_S * SAMPLE_RATE
        log.info("turn-end model: %s", path.name)

    def probability(self, samples: FloatAudio) -> float:
        """How likely it is that the speaker finished their turn with the end of `samples` (16 kHz)."""
        audio = np.asarray(samples, dtype=np.float32)[-self._window :]
        if not np.all(np.isfinite(audio)):
            raise ValueError("the turn-end model was given audio with NaN or infinite samples")
        audio = np.pad(audio, (self._window - len(audio), 0))
        features = log_mel(audio, normalize=True)[np.newaxis]
        (output,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(output).reshape(-1)[0])
