"""Who is talking, as a vector: the GE2E speaker encoder (Resemblyzer's weights, 256-d).

A three-layer LSTM over 40-band mel frames (25 ms windows every 10 ms) of 1.6 s windows; the utterance's
embedding is the L2-normed mean of its windows' (taken 1.3 times a second, over at most its middle 3 s).
Same voice, close vectors: cosine similarity around 0.8-0.95; different voices lower (see
`machine.crowd.speakers` for the threshold). The weights come from the `resemblyzer` wheel, which is
never imported: its module imports webrtcvad, which needs a compiler, and only the network is wanted.
Embeddings are biometric: they are returned to the caller and kept nowhere here.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn

from machine.ports import SAMPLE_RATE, FloatAudio

__all__ = ["EMBEDDING_SIZE", "VoiceEncoder"]

EMBEDDING_SIZE = 256
_MELS = 40
_HOP = SAMPLE_RATE // 100  # 10 ms
_WINDOW = SAMPLE_RATE * 25 // 1000  # 25 ms
_PARTIAL_FRAMES = 160  # 1.6 s
_PARTIALS_PER_S = 1.3
_TARGET_DBFS = -30.0
_LONGEST_S = 3.0
"""Only the middle 3 s of a longer utterance are embedded: the voice is as clear, and the cost capped."""


class _Network(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, EMBEDDING_SIZE)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        embeds = self.relu(self.linear(hidden[-1]))
        return embeds / torch.norm(embeds, dim=1, keepdim=True).clamp_min(1e-9)


class VoiceEncoder:
    """Speech (16 kHz mono float32) → a unit vector that stands for the voice."""

    def __init__(self, weights: Path) -> None:
        self._network = _Network()
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        self._network.load_state_dict(checkpoint["model_state"], strict=False)
        self._network.eval()

    def embed(self, speech: FloatAudio) -> np.ndarray:
        """The voice of one utterance (at least a fraction of a second of speech)."""
        if speech.size == 0 or not np.isfinite(speech).all():
            raise ValueError("speaker embedding needs finite, non-empty 16 kHz audio")
        longest = int(_LONGEST_S * SAMPLE_RATE)
        if len(speech) > longest:
            start = (len(speech) - longest) // 2
            speech = speech[start : start + longest]
        speech = _louder_to(speech.astype(np.float32, copy=False), _TARGET_DBFS)
        frames = int(np.ceil((len(speech) + 1) / _HOP))
        step = max(1, round(SAMPLE_RATE / _PARTIALS_PER_S / _HOP))
        starts = list(range(0, max(1, frames - _PARTIAL_FRAMES + step + 1), step))
        last = starts[-1]
        if len(starts) > 1 and (len(speech) - last * _HOP) / (_PARTIAL_FRAMES * _HOP) < 0.75:
            starts = starts[:-1]  # a last window mostly padding says little
        needed = (starts[-1] + _PARTIAL_FRAMES) * _HOP
        if needed > len(speech):
            speech = np.pad(speech, (0, needed - len(speech)))
        mel = librosa.feature.melspectrogram(
            y=speech, sr=SAMPLE_RATE, n_fft=_WINDOW, hop_length=_HOP, n_mels=_MELS
        ).T.astype(np.float32)
        windows = np.stack([mel[start : start + _PARTIAL_FRAMES] for start in starts])
        with torch.inference_mode():
            partials = self._network(torch.from_numpy(windows)).numpy()
        mean = partials.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)


def _louder_to(speech: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Raise quiet speech to `target_dbfs` (never lowers it), as the encoder was trained on."""
    rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    if rms <= 0:
        return speech
    change = target_dbfs - 20 * np.log10(rms)
    return speech * np.float32(10 ** (change / 20)) if change > 0 else speech
