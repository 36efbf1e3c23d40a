"""Whisper's log-mel features in numpy: the input of the Smart Turn model, without transformers.

The same arithmetic as transformers' `WhisperFeatureExtractor` (Apache-2.0, from
`models/whisper/feature_extraction_whisper.py` and `audio_utils.py`; pipecat vendors it the same way)
for 16 kHz audio: the waveform normalised to zero mean and unit variance, a centred short-time Fourier
transform (400-sample periodic Hann window, hop 160, reflect padding), the power spectrum through 80
Slaney mel filters (0-8 kHz, Slaney area norm), log10 of it (floored at 1e-10), clamped to 8 below its
maximum, and scaled as (x + 4) / 4. One frame per 10 ms: `len(audio) // 160` frames (the last STFT
frame is dropped, as Whisper does). It matches transformers' numpy path to float32 rounding (1e-7)
and its torch path (used when torch is installed) to about 2e-5.

Computed in float64, all frames in one batched FFT; the window and the filter bank are built once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from machine.ports import SAMPLE_RATE

N_FFT = 400
HOP = 160
N_MELS = 80
_MEL_FLOOR = 1e-10
_VARIANCE_EPS = 1e-7


def _hertz_to_mel(hertz: np.ndarray) -> np.ndarray:
    """The Slaney mel scale: linear to 1 kHz (15 mels), logarithmic above."""
    mels = 3.0 * hertz / 200.0
    high = hertz >= 1000.0
    mels[high] = 15.0 + np.log(hertz[high] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hertz(mels: np.ndarray) -> np.ndarray:
    hertz = 200.0 * mels / 3.0
    high = mels >= 15.0
    hertz[high] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[high] - 15.0))
    return hertz


def _mel_filter_bank() -> np.ndarray:
    """Triangular filters evenly spaced in mels from 0 Hz to Nyquist, Slaney area-normalised:
    shape (N_FFT // 2 + 1 frequency bins, N_MELS)."""
    low, high = _hertz_to_mel(np.array([0.0, SAMPLE_RATE / 2]))
    edges = _mel_to_hertz(np.linspace(low, high, N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[np.newaxis, :] - bins[:, np.newaxis]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[np.newaxis, :]


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic, as torch.hann_window
_MEL_FILTERS = _mel_filter_bank()


def log_mel(samples: npt.ArrayLike, normalize: bool = True) -> np.ndarray:
    """Whisper log-mel features of 16 kHz `samples` as given (pad or cut them first): float32, shape
    (80, len(samples) // 160). `normalize` first scales the waveform to zero mean and unit variance."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1 or len(audio) <= N_FFT // 2:
        raise ValueError(f"Whisper features need mono audio of over {N_FFT // 2} samples, got {audio.shape}")
    if normalize:  # in float32, as transformers does it
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + _VARIANCE_EPS)
    padded = np.pad(audio.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP][:-1]  # the last frame is dropped
    spectrum = np.fft.rfft(frames * _WINDOW, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.log10(np.maximum(_MEL_FLOOR, power @ _MEL_FILTERS)).T
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)
